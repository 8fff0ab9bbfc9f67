"""A fixed single-threaded numpy workload, timed once per process.

Trial times divided by this figure are comparable across machines and loads well enough
for regression checks (``bench compare``): both slow down together on a busy machine.
"""

from __future__ import annotations

import time
from functools import cache

import numpy as np


@cache
def calibration_seconds(repeats: int = 5) -> float:
    from bench.execution.threads import limited

    rng = np.random.default_rng(0)
    a = rng.random((512, 512), dtype=np.float32)
    v = rng.random(2_000_000).astype(np.float32)
    times = []
    with limited(1):
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ a
            np.sort(v)
            np.add.reduceat(v, np.arange(0, len(v), 7))
            times.append(time.perf_counter() - t0)
    return float(np.median(times))
