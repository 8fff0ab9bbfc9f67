"""Speed tracking, ALS half-steps (docs/speed-tracking.md): ``bench.kernels.als`` on
ML-100k's 943 users x 1,682 items: the implicit CG half-step (Gram matrix + 3 CG steps,
confidence 1 + rating) and the explicit CG (3 steps) at K = 32, the explicit exact
(Cholesky) half-step at K = 16.  Run by ``benchmarks/speed.py``."""

from __future__ import annotations

import numpy as np
import pytest
from _speed import calibration, one_thread  # noqa: F401 (an autouse fixture)

from bench import load_dataset
from bench.kernels import als as kernels
from bench.models.als import Interactions

K = 32


def test_calibration_start(benchmark):
    calibration(benchmark)


@pytest.fixture(scope="module")
def ratings():
    return load_dataset("ml-100k").ratings


def factors(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, k), dtype=np.float32) * 0.1


def test_als_implicit_cg_halfstep(benchmark, ratings):
    conf = ratings.to_csr()
    conf.data = 1.0 + conf.data
    rows = Interactions.from_scipy(conf).by_user
    users, items = factors(rows.n_rows, K, 0), factors(rows.n_cols, K, 1)

    def half_step() -> None:
        gram = kernels.gram(items, np.float32(0.1))
        kernels.implicit_cg_halfstep(rows.indptr, rows.indices, rows.values, gram, items,
                                     users, 3)  # fmt: skip

    half_step()  # compile or load numba's cache outside the timing
    benchmark(half_step)


@pytest.mark.parametrize(("solver", "k"), [("cg", K), ("cholesky", K // 2)])
def test_als_explicit_halfstep(benchmark, ratings, solver: str, k: int):
    rows = Interactions.from_ratings(ratings).by_user
    n = rows.n_rows
    items, item_bias = factors(rows.n_cols, k, 1), np.zeros(rows.n_cols, np.float32)
    users, user_bias = factors(n, k, 0), np.zeros(n, np.float32)
    reg = np.full(n, 1.0, np.float32)
    no_prior = np.zeros((0, k), np.float32)
    args = (rows.indptr, rows.indices, rows.values, items, item_bias, np.float32(3.5), reg,
            reg, no_prior, users, user_bias)  # fmt: skip

    def half_step() -> None:
        if solver == "cg":
            kernels.explicit_cg_halfstep(*args, 3)
        else:
            kernels.explicit_halfstep(*args)

    half_step()
    benchmark(half_step)


def test_calibration_end(benchmark):
    calibration(benchmark)
