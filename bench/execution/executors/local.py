"""Executors on the driver's own host: ``SerialExecutor`` (one worker process, one trial at a
time: the default) and ``LocalExecutor`` (``jobs`` worker processes, each driven by a thread)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from pathlib import Path

from bench.execution.executors.base import Executor, HostSlot, TrialOutcome, TrialTask


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
