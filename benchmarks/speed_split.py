"""Speed tracking, split (docs/speed-tracking.md): ``splits.assign`` random, stratified
(per user) and temporal, 80/20, on ML-100k.  Run by ``benchmarks/speed.py``."""

from __future__ import annotations

import numpy as np
import pytest
from _speed import calibration, one_thread  # noqa: F401 (an autouse fixture)

from bench import load_dataset
from bench.splitting import splits


def test_calibration_start(benchmark):
    calibration(benchmark)


@pytest.fixture(scope="module")
def ratings():
    return load_dataset("ml-100k").ratings


@pytest.mark.parametrize("method", ["random", "stratified", "temporal"])
def test_split(benchmark, ratings, method: str):
    spec = splits.SplitSpec(method=method, test_fraction=0.2, seed=0)
    fold_of_row = benchmark(splits.assign, ratings, spec)
    assert 0.15 < float(np.mean(fold_of_row == 0)) < 0.25


def test_calibration_end(benchmark):
    calibration(benchmark)
