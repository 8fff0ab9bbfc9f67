"""Speed tracking, metrics (docs/speed-tracking.md): what ``evaluate_ranking`` does after
``recommend``: the relevant pairs, the hit matrix, NDCG / recall / precision / MAP / hit
rate / MRR and coverage at 10 and 20, from full-catalogue top-20 lists of 5,000 users (5,000
items, 50,000 seeded synthetic test ratings).  Run by ``benchmarks/speed.py``."""

from __future__ import annotations

import numpy as np
import pytest
from _speed import calibration, one_thread  # noqa: F401 (an autouse fixture)

from bench import metrics, ranking, synthetic
from bench.evaluation.evaluate import relevant_pairs

USERS, ITEMS, TEST, K = 5_000, 5_000, 50_000, 20


def test_calibration_start(benchmark):
    calibration(benchmark)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(1)
    test = synthetic.generate(USERS, ITEMS, TEST, seed=1).ratings
    # top-20 lists over the whole catalogue: distinct items per row, a few lists padded
    top = np.argsort(rng.random((USERS, 2 * K)), axis=1)[:, :K]
    top = (top * 37 + rng.integers(0, 3, (USERS, 1))).astype(np.int32) % ITEMS
    top[:, -1] = np.where(rng.random(USERS) < 0.05, ranking.NO_ITEM, top[:, -1])
    return test, top


def test_metrics_ranking(benchmark, problem):
    test, top = problem

    def evaluate() -> dict[str, float]:
        keys, users = relevant_pairs(test, None)
        n_items = test.n_items
        hits = metrics.hits_matrix(top[users], users, keys, n_items)
        n_rel = np.bincount((keys // n_items).astype(np.int64), minlength=test.n_users)[users]
        out = {}
        for k in (10, K):
            for name, values in metrics.ranking_metrics(hits, n_rel, k).items():
                out[f"{name}@{k}"] = float(values.mean())
            out[f"coverage@{k}"] = metrics.coverage(top[users, :k], n_items)
        return out

    result = benchmark(evaluate)
    assert 0.0 < result[f"recall@{K}"] < 1.0


def test_calibration_end(benchmark):
    calibration(benchmark)
