"""Where trials run: one interface, three executors (serial, local processes, Dask).

The runner (the driver) hands an executor one ``TrialTask`` at a time and gets back a
``concurrent.futures.Future`` of a ``TrialOutcome``.  Whatever the executor, the task runs
the trial in recbench's own worker subprocess (``bench.worker``) on the executing host, so
time limits, memory limits and crash isolation are the same everywhere; the outcome carries
the record and the per-user arrays, and the driver alone writes the results store.

* ``SerialExecutor``: one worker process, one trial at a time (the default; timings are
  never disturbed by another trial).
* ``LocalExecutor``: ``jobs`` worker processes on this machine, each driven by a thread.
* ``DaskExecutor``: a Dask cluster (``Client(address)``), or a ``LocalCluster`` that it
  starts and stops.  Workers share no disk with the driver: a task carries the spec, the
  fingerprints to check the dataset and the split it rebuilds from the seed, and the
  dataset itself for ``csv:`` and ``synthetic:`` data (a registry dataset comes from the
  worker's own cache, downloaded and checksummed there).  Submissions are
  ``pure=False``; a task whose worker died is not re-run silently: the scheduler's
  resubmission finds the trial's start marker and returns a failed outcome.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures as cf
import io
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import progress

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "local", "dask")
ENV_SCHEDULER = "RECBENCH_DASK_SCHEDULER"
#: seconds to reach a Dask scheduler
CONNECT_TIMEOUT = 20.0
#: what the driver gives a worker that cannot read its files: bytes of a dataset cache file
SHIPPED_PREFIXES = ("csv:", "synthetic:")
#: registry sources a worker can acquire on its own (checksummed downloads)
FETCHABLE_SOURCES = ("url", "pypi-wheel")


def needs_shipping(name: str, dataset: Any) -> bool:
    """The driver's copy of ``dataset`` must travel with the tasks: workers cannot fetch it
    (a file or generator spec of the driver's, or hand-placed registry files)."""
    if name.startswith(SHIPPED_PREFIXES):
        return True
    return dataset.meta.get("source_kind") not in FETCHABLE_SOURCES


@dataclass(frozen=True)
class TrialTask:
    """Everything a host needs to run one trial; nothing refers to the driver's disk unless
    ``results_dir`` is set (executors on the driver's own host)."""

    spec: dict
    run_token: str
    max_threads: int
    memory_limit_mb: int | None = None
    dataset_fingerprint: str | None = None
    split_fingerprint: str | None = None
    #: the driver's results dir, for executors on its host (split files read, not rebuilt)
    results_dir: str | None = None
    #: key of the driver's copy of the dataset on the cluster (Dask), fetched when needed
    shipped_key: str | None = None


@dataclass
class TrialOutcome:
    record: dict
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    host: str = "localhost"
    store_fault: str | None = None


# ----------------------------------------------------------------------------------------
# Host side: a worker subprocess per executing thread
# ----------------------------------------------------------------------------------------


def encode_arrays(arrays: dict[str, np.ndarray]) -> str:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_arrays(text: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(base64.b64decode(text))) as z:
        return {k: z[k] for k in z.files}


class Worker:
    """One long-lived ``python -m bench.worker`` process."""

    def __init__(self, log_path: Path, max_threads: int,
                 command: Sequence[str] = (sys.executable, "-m", "bench.worker")) -> None:
        env = dict(os.environ)
        # Pools are sized to the largest thread count wanted; each trial then lowers them.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(max_threads)
        env["NUMBA_NUM_THREADS"] = str(max_threads)
        env["PYTHONUNBUFFERED"] = "1"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            start_new_session=True,
        )
        self._pending = bytearray()  # bytes read from the worker past the last line

    def run(
        self, request: dict, timeout: float, on_progress: Callable[[str], None] | None = None
    ) -> tuple[dict | None, str | None]:
        """The worker's answer, or (None, reason) when it crashed or timed out.  Progress
        lines the trial sends before its answer go to ``on_progress``.  ``timeout`` counts
        from the trial's warm-up (``progress.CLOCK_STARTS``); before it, start-up has
        ``progress.STARTUP_ALLOWANCE`` seconds more."""
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None, self._death()
        # the limit runs from the warm-up; start-up (imports, data, split) has an allowance
        deadline = time.monotonic() + timeout + progress.STARTUP_ALLOWANCE
        fd = self.proc.stdout.fileno()
        while True:
            # Lines are split here, not by a buffered readline: a buffer could hold the
            # next line while select() waits on the pipe (a progress line, then the answer).
            end = self._pending.find(b"\n")
            while end < 0:
                sel = selectors.DefaultSelector()
                sel.register(fd, selectors.EVENT_READ)
                ready = sel.select(max(deadline - time.monotonic(), 0.0))
                sel.close()
                if not ready:
                    self.kill()
                    return None, f"timeout: exceeded the time limit of {timeout:g} s"
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None, self._death()
                self._pending += chunk
                end = self._pending.find(b"\n")
            line = bytes(self._pending[:end])
            del self._pending[: end + 1]
            answer = json.loads(line)
            if set(answer) == {"progress"}:
                if answer["progress"].startswith(progress.CLOCK_STARTS):
                    deadline = time.monotonic() + timeout
                if on_progress is not None:
                    on_progress(answer["progress"])
                continue
            return answer, None

    def _death(self) -> str:
        code = self.proc.wait()
        if code < 0:
            name = signal.Signals(-code).name
            return f"worker crashed: killed by {name} (see the run log)"
        return f"worker exited with code {code} (see the run log)"

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class HostSlot:
    """One recbench worker subprocess on the executing host, replaced after a crash or a
    time-out, and when a new run (another driver) starts using it."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.worker: Any = None
        self.key: tuple | None = None

    def run(
        self, task: TrialTask, dataset_file: str | None,
        on_progress: Callable[[Any, str, float], None] | None = None,
    ) -> TrialOutcome:
        """Run ``task`` here; ``on_progress(spec, text, started)`` gets the trial's
        progress reports (executors on the driver's host)."""
        from bench.trial import TrialSpec, base_record, finish

        spec = TrialSpec.from_dict(task.spec)
        key = (task.run_token, task.max_threads)
        if self.worker is not None and self.key != key:
            self.close()
        if self.worker is None:
            self.worker = Worker(self.log_path, task.max_threads)
            self.key = key
        request = {
            "spec": task.spec,
            "results_dir": task.results_dir,
            "memory_limit_mb": task.memory_limit_mb,
            "return_per_user": True,
            "dataset_file": dataset_file,
        }
        t0 = time.perf_counter()
        show = None if on_progress is None else (lambda text: on_progress(spec, text, t0))
        answer, problem = self.worker.run(request, spec.time_limit, show)
        if answer is None:
            self.close()
            status = "timeout" if problem and problem.startswith("timeout") else "failed"
            record = finish(base_record(spec), status, problem)
            record["duration_seconds"] = round(time.perf_counter() - t0, 3)
            return TrialOutcome(record)
        if "store_fault" in answer:
            return TrialOutcome({}, store_fault=answer["store_fault"])
        per_user = decode_arrays(answer.pop("per_user_npz")) if "per_user_npz" in answer else {}
        check_fingerprints(answer, task)
        return TrialOutcome(answer, per_user)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker.close()
            self.worker = None


def check_fingerprints(record: dict, task: TrialTask) -> None:
    """A worker whose data or split differs from the driver's fails the trial, never
    records numbers computed on other rows."""
    checks = (("dataset_fingerprint", task.dataset_fingerprint, "dataset"),
              ("split_fingerprint", task.split_fingerprint, "split rebuilt from its seed"))
    for key, expected, what in checks:
        got = record.get(key)
        if expected and got and got != expected and record.get("status") != "failed":
            record["status"] = "failed"
            record["error"] = (f"the {what} on the executing host differs from the driver's "
                               f"({key} {got} vs {expected})")
            record["metrics"] = {}
            return


# ----------------------------------------------------------------------------------------
# Executors
# ----------------------------------------------------------------------------------------


class Executor:
    """``start`` once, ``submit`` tasks, ``cancel`` what is outstanding, ``close``."""

    name = "serial"
    #: ``(spec, text, started)`` for the progress of long trials (driver-host executors)
    on_progress: Callable[[Any, str, float], None] | None = None

    def __init__(self) -> None:
        self.run_token = uuid.uuid4().hex[:12]

    @property
    def slots(self) -> int:
        """Trials this executor can run at once."""
        return 1

    def start(self) -> None:
        pass

    def concurrency(self, host: str) -> int:
        """Trials that run at once on ``host`` (its slots)."""
        return 1

    def prepare_dataset(self, name: str, dataset: Any) -> str | None:
        """Make the driver's copy of ``dataset`` available to workers; a key or None."""
        return None

    def submit(self, task: TrialTask) -> cf.Future:
        raise NotImplementedError

    def cancel(self, futures: list) -> None:
        for f in futures:
            f.cancel()

    def close(self) -> None:
        pass

    def on_driver_host(self) -> bool:
        return True


class SerialExecutor(Executor):
    """Today's behaviour: the driver runs one trial at a time in one worker process."""

    def __init__(self, log_path: Path) -> None:
        super().__init__()
        self.slot = HostSlot(log_path)

    def submit(self, task: TrialTask) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_result(self.slot.run(task, None, self.on_progress))
        return future

    def close(self) -> None:
        self.slot.close()


class LocalExecutor(Executor):
    """``jobs`` worker processes on this machine, each driven by a thread of the driver."""

    name = "local"

    def __init__(self, log_path: Path, jobs: int) -> None:
        super().__init__()
        self.jobs = jobs
        self.log_path = log_path
        self.pool: cf.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._slots: list[HostSlot] = []
        self._lock = threading.Lock()

    @property
    def slots(self) -> int:
        return self.jobs

    def concurrency(self, host: str) -> int:
        return self.jobs

    def start(self) -> None:
        self.pool = cf.ThreadPoolExecutor(self.jobs, thread_name_prefix="recbench-local")

    def _run(self, task: TrialTask) -> TrialOutcome:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = HostSlot(self.log_path)
            with self._lock:
                self._slots.append(slot)
        return slot.run(task, None, self.on_progress)

    def submit(self, task: TrialTask) -> cf.Future:
        assert self.pool is not None
        return self.pool.submit(self._run, task)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for slot in self._slots:  # a running trial's worker is killed: its thread ends
                slot.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


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
            from bench.dask_address import check_address, probe

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
        from bench.dask_address import dashboard

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
        future = self.client.scatter(dataset_payload(name, dataset), hash=False)
        self._shipped[future.key] = future  # held here so the cluster keeps it for the run
        return future.key

    def submit(self, task: TrialTask) -> cf.Future:
        from bench.trial import TrialSpec

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
    """The dataset as the bytes of a checksummed cache file (``datasets.save_cache``)."""
    from bench import datasets

    with tempfile.TemporaryDirectory(prefix="recbench-ship-") as tmp:
        path = Path(tmp) / "dataset.npz"
        datasets.save_cache(dataset, path, {"shipped_as": name})
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

    from bench.trial import TrialSpec, base_record, finish

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


# -- choosing one ------------------------------------------------------------------------


def make_executor(kind: str, log_path: Path, jobs: int | None = None,
                  scheduler: str | None = None) -> Executor:
    """``kind`` is one of ``EXECUTORS``; ``log_path`` receives the local workers' output."""
    if kind == "local":
        return LocalExecutor(log_path, jobs or os.cpu_count() or 1)
    if kind == "dask":
        return DaskExecutor(scheduler or os.environ.get(ENV_SCHEDULER) or None, jobs)
    return SerialExecutor(log_path)


def longest_first(specs: list, history: dict[tuple, float]) -> list:
    """Specs with a known cost (past records' fit + recommend seconds for the same adapter
    and dataset, else the adapter's ``cost_estimate_seconds``) longest first, then the
    others in input order; so the run does not end on one long trial while slots idle."""
    from bench import registry

    def cost(spec: Any) -> float | None:
        if (spec.adapter, spec.dataset) in history:
            return history[(spec.adapter, spec.dataset)]
        try:
            return getattr(registry.get(spec.adapter), "cost_estimate_seconds", None)
        except Exception:  # noqa: BLE001 - an unavailable adapter fails in its trial
            return None

    costs = [cost(s) for s in specs]
    known = sorted((i for i, c in enumerate(costs) if c is not None), key=lambda i: -costs[i])
    return [specs[i] for i in known] + [s for s, c in zip(specs, costs, strict=True) if c is None]


def past_costs(records: list[dict]) -> dict[tuple, float]:
    """Mean fit + recommend seconds per (adapter, dataset) over finished records."""
    sums: dict[tuple, list[float]] = {}
    for rec in records:
        if rec.get("status") == "ok" and rec.get("fit_seconds") is not None:
            seconds = rec["fit_seconds"] + (rec.get("recommend_seconds") or 0.0)
            sums.setdefault((rec["adapter"], rec["dataset"]), []).append(seconds)
    return {k: sum(v) / len(v) for k, v in sums.items()}
