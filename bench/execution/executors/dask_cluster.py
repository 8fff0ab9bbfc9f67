"""The Dask executor: trials as Dask futures on a cluster (or a ``LocalCluster`` started
here), each run by the executing host's own recbench worker subprocess (``run_on_dask_worker``)."""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.execution.executors.base import (
    Executor,
    HostSlot,
    TrialOutcome,
    TrialTask,
    needs_shipping,
)

log = logging.getLogger(__name__)
#: seconds to reach a Dask scheduler
CONNECT_TIMEOUT = 20.0


class DaskExecutor(Executor):
    """Trials as Dask futures on a cluster, or on a ``LocalCluster`` of ``jobs`` one-thread
    workers started (and stopped) here when no scheduler address is given."""

    name = "dask"

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        super().__init__()
        self.address = address
        self.jobs = jobs
        self.cluster: Any = None
        self.client: Any = None
        self._shipped: dict[str, Any] = {}
        self._shipped_bytes: dict[str, int] = {}
        #: bytes scattered to the cluster by this run (0 when every host reads the store)
        self.bytes_scattered = 0
        self._pending: dict[cf.Future, Any] = {}

    def start(self) -> None:
        from bench.errors import UserError

        # Dask's own info lines are not the user's business (read when Dask is imported)
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("--executor dask needs Dask: pip install -e '.[dask]'") from None
        if self.address:
            from bench.execution.dask_address import check_address, probe

            check_address(self.address)
            probe(self.address, CONNECT_TIMEOUT)
            try:
                self.client = Client(self.address, timeout=f"{CONNECT_TIMEOUT:g}s")
            except OSError as exc:
                raise UserError(f"cannot reach the Dask scheduler at {self.address}: {exc}"
                                ) from None
        else:
            self.cluster = LocalCluster(
                n_workers=self.jobs or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=":0", silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        if not self.client.nthreads():
            self.client.wait_for_workers(1, timeout=60)
        from bench.execution.dask_address import dashboard

        log.info("Dask dashboard: %s", dashboard(self.client, local=self.cluster is not None))

    def _workers(self) -> dict[str, dict]:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    @property
    def slots(self) -> int:
        if self.client is None:
            return 1
        return max(1, sum(w["nthreads"] for w in self._workers().values()))

    def concurrency(self, host: str) -> int:
        return sum(w["nthreads"] for w in self._workers().values() if w["host"] == host) or 1

    def on_driver_host(self) -> bool:
        return False

    def prepare_dataset(self, name: str, dataset: Any) -> str | None:
        """Data a worker cannot fetch itself goes to the cluster once (a worker fetches its
        copy with its first task): ``csv:`` and ``synthetic:`` data and registry datasets
        whose files were placed by hand; registry datasets with a download source come from
        each worker's own cache (downloaded and checksummed there)."""
        if not needs_shipping(name, dataset):
            return None
        payload = dataset_payload(name, dataset)
        future = self.client.scatter(payload, hash=False)
        self._shipped[future.key] = future  # held here so the cluster keeps it for the run
        self._shipped_bytes[future.key] = len(payload)
        self.bytes_scattered += len(payload)
        log.info("%s: scattered %d bytes to the cluster (no data store its workers reach)",
                 name, len(payload))
        return future.key

    def shipped_bytes(self, key: str | None) -> int:
        return self._shipped_bytes.get(key, 0) if key else 0

    def store_location(self, local_dir: str, location: str) -> str | None:
        """The store's location when every worker reads the same manifest there (a
        directory they share with the driver, or a URL): then nothing is scattered."""
        from bench.data import colstore

        if self.cluster is not None and colstore.is_local(location):
            return local_dir  # a LocalCluster: this host's own disk
        expected = colstore.manifest_digest(local_dir)
        answers = self.client.run(colstore.manifest_digest, location)
        if expected and answers and all(a == expected for a in answers.values()):
            return location
        unreached = sorted(w for w, a in answers.items() if a != expected)
        log.info("data store %s: not readable by worker(s) %s; scattering the data instead",
                 location, ", ".join(unreached))
        return None

    def submit(self, task: TrialTask) -> cf.Future:
        from bench.execution.trial import TrialSpec

        trial_id = TrialSpec.from_dict(task.spec).trial_id
        payload = self._shipped.get(task.shipped_key) if task.shipped_key else None
        dask_future = self.client.submit(
            run_on_dask_worker, task, payload, pure=False, retries=0,
            key=f"recbench-{trial_id}-{task.run_token}",
        )
        future: cf.Future = cf.Future()
        self._pending[future] = dask_future

        def done(df: Any) -> None:
            if future.done():
                return
            if df.cancelled():  # not by us: the client lost the scheduler
                from bench.errors import ExecutorFault


                future.set_exception(ExecutorFault(
                    f"lost the Dask scheduler at {self.address or 'the LocalCluster'}; nothing "
                    "was recorded for the trials running there, re-run the same command to "
                    "resume once it is back"))
                return
            try:
                future.set_result(df.result())
            except BaseException as exc:  # noqa: BLE001 - the driver records it as failed
                future.set_exception(exc)

        dask_future.add_done_callback(done)
        return future

    def cancel(self, futures: list) -> None:
        for f in futures:
            f.cancel()
        dask_futures = [self._pending[f] for f in futures if f in self._pending]
        if dask_futures and self.client is not None and self.client.status == "running":
            self.client.cancel(dask_futures, force=True)

    def close(self) -> None:
        if self.client is not None:
            lost = self.client.status != "running"
            if lost:  # one line says so, not the tracebacks of Dask's cancelled reconnection
                logging.disable(logging.CRITICAL)
            try:
                self.client.close(timeout=2 if lost else 10)
            except Exception:  # noqa: BLE001 - a lost scheduler: nothing left to close
                pass
            finally:
                logging.disable(logging.NOTSET)
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
        self._shipped.clear()
        self._pending.clear()


def dataset_payload(name: str, dataset: Any) -> bytes:
    """The dataset as the bytes of a checksummed cache file (``cache.save_cache``)."""
    from bench.data import cache

    with tempfile.TemporaryDirectory(prefix="recbench-ship-") as tmp:
        path = Path(tmp) / "dataset.npz"
        cache.save_cache(dataset, path, {"shipped_as": name})
        return path.read_bytes()


# -- the Dask task -----------------------------------------------------------------------

_SLOTS: dict[int, HostSlot] = {}
_SLOTS_LOCK = threading.Lock()


def _close_slots() -> None:
    for slot in list(_SLOTS.values()):
        slot.close()


atexit.register(_close_slots)


def shipped_file(key: str, payload: bytes) -> str:
    """The driver's copy of a dataset, written once per host under the temp directory."""
    path = Path(tempfile.gettempdir()) / "recbench-shipped" / f"{key}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    return str(path)


def run_on_dask_worker(task: TrialTask, payload: bytes | None = None) -> TrialOutcome:
    """The Dask task: run one trial in this host's recbench worker subprocess."""
    from urllib.parse import urlparse

    from distributed import get_client, get_worker

    from bench.execution.trial import TrialSpec, base_record, finish

    worker = get_worker()
    host = urlparse(worker.address).hostname or "localhost"
    spec = TrialSpec.from_dict(task.spec)
    client = get_client()
    # No silent retry: when the worker that ran this trial died, the scheduler resubmits
    # the task; the start marker it left makes the new attempt a failed record instead.
    marker = ["recbench", task.run_token, spec.trial_id]
    earlier = client.get_metadata(marker, None)
    if earlier is not None:
        record = finish(base_record(spec), "failed",
                        f"worker crashed: the Dask worker {earlier} running this trial died "
                        "(not retried; --retry-failed re-runs it)")
        return TrialOutcome(record, host=host)
    client.set_metadata(marker, worker.address)
    dataset_file = shipped_file(task.shipped_key, payload) if task.shipped_key and payload else None
    with _SLOTS_LOCK:
        slot = _SLOTS.setdefault(
            threading.get_ident(), HostSlot(Path(worker.local_directory) / "recbench-worker.log"))
    outcome = slot.run(task, dataset_file)
    outcome.host = host
    return outcome
