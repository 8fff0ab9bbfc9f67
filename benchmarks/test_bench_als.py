"""pytest-benchmark microbenchmarks: one ALS half-step, recbench's kernels vs implicit's.

Run (the project's addopts skip benchmarks, so override them):

    pytest benchmarks -o addopts="" --benchmark-only --benchmark-group-by=param:k

Each benchmark updates the user factors of ML-100k (943 users x 1682 items, confidence
1 + rating) from fixed item factors with 3 conjugate-gradient steps, Gram matrix included,
on the same threads (``BENCH_THREADS``, default 2) with BLAS at one thread.  The explicit
half-steps (CG and exact Cholesky) are timed on the same matrix of ratings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _data import load_ml100k  # noqa: E402

from bench import threads  # noqa: E402
from bench.kernels import als as kernels  # noqa: E402
from bench.models.als import Interactions  # noqa: E402

THREADS = int(os.environ.get("BENCH_THREADS", "2"))


@pytest.fixture(scope="module")
def problem():
    ratings = load_ml100k().ratings
    conf = ratings.to_csr()
    conf.data = 1.0 + conf.data
    return conf, Interactions.from_scipy(conf), Interactions.from_ratings(ratings)


@pytest.fixture(autouse=True)
def fixed_threads():
    with threads.limited(THREADS, blas=False), threads.blas_limited(1):
        yield


def factors(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, k), dtype=np.float32) * 0.1


@pytest.mark.parametrize("k", [32, 64])
def test_implicit_cg_halfstep_implicit(benchmark, problem, k: int) -> None:
    from implicit.cpu import _als

    conf, _, _ = problem
    users, items = factors(conf.shape[0], k, 0), factors(conf.shape[1], k, 1)
    benchmark(_als.least_squares_cg, conf, users, items, 0.1, num_threads=THREADS, cg_steps=3)


@pytest.mark.parametrize("k", [32, 64])
def test_implicit_cg_halfstep_recbench(benchmark, problem, k: int) -> None:
    _, data, _ = problem
    rows = data.by_user
    users, items = factors(rows.n_rows, k, 0), factors(rows.n_cols, k, 1)

    def half_step() -> None:
        gram = kernels.gram(items, np.float32(0.1))
        kernels.implicit_cg_halfstep(rows.indptr, rows.indices, rows.values, gram, items,
                                     users, 3)  # fmt: skip

    half_step()  # compile or load the cache outside the timing
    benchmark(half_step)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("k", [32, 64])
def test_explicit_halfstep_recbench(benchmark, problem, k: int, solver: str) -> None:
    _, _, data = problem
    rows = data.by_user
    n = rows.n_rows
    items, item_bias = factors(rows.n_cols, k, 1), np.zeros(rows.n_cols, dtype=np.float32)
    users, user_bias = factors(n, k, 0), np.zeros(n, dtype=np.float32)
    reg = np.full(n, 1.0, dtype=np.float32)
    no_prior = np.zeros((0, k), dtype=np.float32)
    args = (rows.indptr, rows.indices, rows.values, items, item_bias, np.float32(3.5), reg,
            reg, no_prior, users, user_bias)  # fmt: skip

    def half_step() -> None:
        if solver == "cg":
            kernels.explicit_cg_halfstep(*args, 3)
        else:
            kernels.explicit_halfstep(*args)

    half_step()
    benchmark(half_step)
