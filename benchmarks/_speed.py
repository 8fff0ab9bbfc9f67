"""What every file of the speed-tracking set shares (docs/speed-tracking.md): the calibration
kernel, measured at the start and at the end of each file, and one thread for everything.

The files, in run order: ``speed_topk.py``, ``speed_als.py``, ``speed_metrics.py``,
``speed_split.py``, ``speed_load.py``; ``benchmarks/speed.py`` runs them and compares each
benchmark's time, as a ratio to the calibration next to it, with the committed baselines.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench import threads

#: the calibration kernel's fixed workload: sort this many seeded float64 values, gather them
#: in a seeded random order and sum (branchy compute and memory traffic; no BLAS, no numba)
CALIBRATION_SIZE = 400_000


def calibration_workload() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    return rng.random(CALIBRATION_SIZE), rng.permutation(CALIBRATION_SIZE)


def calibrate(values: np.ndarray, order: np.ndarray) -> float:
    return float(np.sort(values)[order].cumsum()[-1])


def calibration(benchmark) -> None:
    """The calibration benchmark (a file's ``test_calibration_*`` call this)."""
    benchmark(calibrate, *calibration_workload())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """numba and BLAS on one thread: ratios follow the code, not the scheduler."""
    with threads.limited(1, blas=False), threads.blas_limited(1):
        yield
