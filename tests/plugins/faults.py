"""Fault-injection adapters for the runner tests, loaded through RECBENCH_ADAPTERS_PATH.

Each predicts the global mean (so it has real metrics when it does not fail) and fails in
one specific way during ``fit``.
"""

import os
import signal
import time

import numpy as np

from bench.adapter import Adapter


class Mean(Adapter):
    name = "fault.Mean"
    predicts_ratings = True

    def __init__(self, sleep: float = 0.0, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)
        self.sleep = sleep

    def fit_prepared(self, train):
        time.sleep(self.sleep)
        self.mean_ = train.global_mean
        return self

    def predict(self, users, items):
        return np.full(len(users), self.mean_, dtype=np.float32)


class Raise(Mean):
    name = "fault.Raise"

    def fit_prepared(self, train):
        raise RuntimeError("planted failure")


class Crash(Mean):
    name = "fault.Crash"

    def fit_prepared(self, train):
        os.kill(os.getpid(), signal.SIGSEGV)


class Hang(Mean):
    name = "fault.Hang"

    def fit_prepared(self, train):
        time.sleep(3600)


class Hog(Mean):
    name = "fault.Hog"

    def fit_prepared(self, train):
        self.blob_ = np.ones(2**31, dtype=np.uint8)  # 2 GiB, past the test's memory limit
        return super().fit_prepared(train)


class SlowStart(Mean):
    """Slow the first time it is built in a process (as a large library's import on a loaded
    machine, before the warm-up), fast after: the trial's time limit counts from the warm-up,
    so this is not a timeout."""

    name = "fault.SlowStart"
    started = False

    def __init__(self, startup: float = 0.0, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)
        self.startup = startup
        if not SlowStart.started:
            SlowStart.started = True
            time.sleep(startup)
