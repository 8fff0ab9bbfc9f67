"""Where trials run: one interface, three executors (serial, local processes, Dask).

The runner (the driver) hands an executor one ``TrialTask`` at a time and gets back a
``concurrent.futures.Future`` of a ``TrialOutcome``.  Whatever the executor, the task runs
the trial in recbench's own worker subprocess (``bench.execution.worker``) on the executing host, so
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

import base64
import concurrent.futures as cf
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.execution import progress

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
    #: the worker returns the trial's top-K lists for the driver to store
    keep_topk: bool = True
    #: an in-memory adapter class, pickled by value (``bench.execution.inline``)
    adapter_code: str | None = None
    #: bytes of that copy (0 when nothing is scattered), for the record's ``data_delivery``
    shipped_bytes: int = 0
    #: where the host reads the dataset and split (``bench.execution.datastore``): a
    #: directory it can reach or an fsspec URL; None: the host loads or is shipped the data
    data_store: str | None = None


@dataclass
class TrialOutcome:
    record: dict
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    host: str = "localhost"
    store_fault: str | None = None
    #: the trial's top-K lists (``bench.execution.topk``), empty when not kept
    topk: dict[str, np.ndarray] = field(default_factory=dict)
    #: a damaged data store (``colstore.StoreCorrupt``): the run stops with exit 2
    data_fault: str | None = None


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
    """One long-lived ``python -m bench.execution.worker`` process."""

    def __init__(self, log_path: Path, max_threads: int,
                 command: Sequence[str] = (sys.executable, "-m", "bench.execution.worker")) -> None:
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
        from bench.execution.trial import TrialSpec, base_record, finish

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
            "return_topk": task.keep_topk,
            "adapter_code": task.adapter_code,
            "dataset_file": dataset_file,
            "data_store": task.data_store,
            "bytes_scattered": task.shipped_bytes if dataset_file else 0,
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
        if "data_fault" in answer:
            return TrialOutcome({}, data_fault=answer["data_fault"])
        per_user = decode_arrays(answer.pop("per_user_npz")) if "per_user_npz" in answer else {}
        top_k = decode_arrays(answer.pop("topk_npz")) if "topk_npz" in answer else {}
        check_fingerprints(answer, task)
        return TrialOutcome(answer, per_user, topk=top_k)

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
# The interface every executor implements
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

    def store_location(self, local_dir: str, location: str) -> str | None:
        """Where this executor's hosts read the data store written at ``local_dir`` (and
        published at ``location``), or None when they cannot reach it."""
        return local_dir

    def shipped_bytes(self, key: str | None) -> int:
        """Bytes of the copy scattered under ``key`` (0: none)."""
        return 0

    def submit(self, task: TrialTask) -> cf.Future:
        raise NotImplementedError

    def cancel(self, futures: list) -> None:
        for f in futures:
            f.cancel()

    def close(self) -> None:
        pass

    def on_driver_host(self) -> bool:
        return True
