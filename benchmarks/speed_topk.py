"""Speed tracking, top-K (docs/speed-tracking.md): the fused top-K kernel over precomputed
score blocks (``ranking.select``) and ``ranking.recommend`` with ``factors=`` (the fused
score-and-select path), 1,000 users x 10,000 items, 32 float32 factors, K = 10, each user's
seen items (a power law, about 57 on average) excluded.  Run by ``benchmarks/speed.py``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _speed import calibration, one_thread  # noqa: F401 (an autouse fixture)

from bench import ranking

USERS, ITEMS, FACTORS, K = 1_000, 10_000, 32, 10


def test_calibration_start(benchmark):
    calibration(benchmark)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((USERS, FACTORS)) / np.sqrt(FACTORS)
    v = rng.standard_normal((ITEMS, FACTORS))
    counts = np.minimum(np.floor(20 * (1 + rng.pareto(1.5, USERS))), ITEMS // 4)
    rows = np.repeat(np.arange(USERS), counts.astype(np.int64))
    cols = rng.integers(0, ITEMS, len(rows))
    seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(USERS, ITEMS))
    seen.sum_duplicates()
    seen.sort_indices()
    return u.astype(np.float32), v.astype(np.float32), seen, np.arange(USERS, dtype=np.int32)


def test_topk_select(benchmark, problem):
    """The fused top-K kernel alone, over precomputed full-catalogue score blocks."""
    u, v, seen, users = problem
    scores = u @ v.T
    indptr, indices = ranking.seen_rows(seen, users)
    ranking.select(scores[:10], K, *ranking.seen_rows(seen, users[:10]))  # compile
    benchmark(ranking.select, scores, K, indptr, indices)


def test_topk_recommend_factors(benchmark, problem):
    """``recommend`` through ``factors=``: tiles scored by BLAS, merged into the heaps."""
    u, v, seen, users = problem

    def score(block):
        return u[block] @ v.T

    def factors(block):
        return ranking.FactorScores(u[block], v)

    ranking.recommend(score, users[:50], seen, K, factors=factors)  # compile
    benchmark(ranking.recommend, score, users, seen, K, factors=factors)


def test_calibration_end(benchmark):
    calibration(benchmark)
