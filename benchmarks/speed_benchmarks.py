"""The speed-tracking set: recbench's kernels and stages under pytest-benchmark, each timed
against a calibration kernel measured in the same run (docs/speed-tracking.md).

    python -m pytest benchmarks/speed_benchmarks.py -o addopts="" -p no:cacheprovider \
        --benchmark-only --benchmark-timer=time.process_time --benchmark-json=speed.json

(not named ``test_*.py``: ``pytest benchmarks``, the command of results/als_microbench.md,
runs ``test_bench_als.py`` alone as before; a file given by path is collected anyway)

``python benchmarks/speed.py`` runs this file the same way, turns the times into ratios to
the calibration kernel and compares them with ``benchmarks/speed_baseline.json``
(``--refresh`` rewrites that file); ``tests/test_speed_tracking.py`` does the comparison in CI.

Stages, in run order, each preceded and followed by a calibration (``test_calibration``):

* top-K: ``ranking.select`` (the fused top-K kernel over precomputed score blocks) and
  ``ranking.recommend`` with ``factors=`` (fused score-and-select), 1,000 users x 10,000
  items, 32 float32 factors, K = 10, a power-law number of seen items per user excluded;
* ALS half-steps (``bench.kernels.als``): the implicit CG (3 steps, Gram included), the
  explicit CG (3 steps) at K = 32 and the explicit exact (Cholesky) update at K = 16 of
  ML-100k's 943 users;
* metrics: NDCG / recall / precision / MAP / hit rate / MRR at 10 and 20 and coverage from
  full-catalogue top-20 lists of 5,000 users (5,000 items, 50,000 test ratings):
  ``hits_matrix`` + ``ranking_metrics``, as ``evaluate_ranking`` does after ``recommend``;
* split: ``splits.assign`` random, stratified (per user) and temporal 80/20 on ML-100k;
* load: reading ML-100k's checksummed dataset cache, and parsing ML-100k's ``u.data``
  layout (written from that dataset, so no download) into a coded ``Dataset``.

Everything runs on one thread (numba and BLAS): the ratios then follow the code, not how
the scheduler of a shared machine spreads threads.  numba compile time is excluded (a
warm-up call before timing).  Sizes keep each round in the milliseconds and the whole file
under a minute on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bench import load_dataset, synthetic
from bench import threads as bench_threads
from bench.data import datasets
from bench.data.cache import read_cache, save_cache
from bench.data.readers.coding import build_dataset
from bench.data.readers.movielens import parse_movielens_100k
from bench.data.readers.raw import SourceFiles
from bench.evaluation import metrics, ranking
from bench.evaluation.evaluate import relevant_pairs
from bench.kernels import als as kernels
from bench.models.als import Interactions
from bench.splitting import splits

#: the calibration kernel's fixed workload: sort this many seeded float64 values, then
#: gather them in a seeded random order (branchy compute + memory traffic, no BLAS)
CALIBRATION_SIZE = 400_000


def calibration_workload() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    return rng.random(CALIBRATION_SIZE), rng.permutation(CALIBRATION_SIZE)


def calibrate(values: np.ndarray, order: np.ndarray) -> float:
    s = np.sort(values)
    return float(s[order].cumsum()[-1])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with bench_threads.limited(1, blas=False), bench_threads.blas_limited(1):
        yield


@pytest.fixture(scope="module")
def ml100k():
    return load_dataset("ml-100k")


@pytest.fixture(scope="module")
def calibration_data():
    return calibration_workload()


# One calibration before and after every stage: a benchmark's ratio uses the faster of the
# two calibrations around it (benchmarks/speed.py), so a machine whose load drifts during
# the run is compared with itself at about the same time.
def _calibration(benchmark, calibration_data) -> None:
    benchmark(calibrate, *calibration_data)


def test_calibration_0_start(benchmark, calibration_data):
    _calibration(benchmark, calibration_data)


# -- top-K ----------------------------------------------------------------------------------

TOPK_USERS, TOPK_ITEMS, TOPK_FACTORS, TOPK_K = 1_000, 10_000, 32, 10


@pytest.fixture(scope="module")
def topk_problem():
    rng = np.random.default_rng(0)
    u = (rng.standard_normal((TOPK_USERS, TOPK_FACTORS)) / np.sqrt(TOPK_FACTORS))
    v = rng.standard_normal((TOPK_ITEMS, TOPK_FACTORS))
    counts = np.minimum(np.floor(20 * (1 + rng.pareto(1.5, TOPK_USERS))), TOPK_ITEMS // 4)
    rows = np.repeat(np.arange(TOPK_USERS), counts.astype(np.int64))
    cols = rng.integers(0, TOPK_ITEMS, len(rows))
    seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(TOPK_USERS, TOPK_ITEMS))  # fmt: skip
    seen.sum_duplicates()
    seen.sort_indices()
    users = np.arange(TOPK_USERS, dtype=np.int32)
    return u.astype(np.float32), v.astype(np.float32), seen, users


def test_topk_select(benchmark, topk_problem):
    """The fused top-K kernel alone, over precomputed full-catalogue score blocks."""
    u, v, seen, users = topk_problem
    scores = u @ v.T
    indptr, indices = ranking.seen_rows(seen, users)
    ranking.select(scores[:10], TOPK_K, *ranking.seen_rows(seen, users[:10]))  # compile
    benchmark(ranking.select, scores, TOPK_K, indptr, indices)


def test_topk_recommend_factors(benchmark, topk_problem):
    """``recommend`` through ``factors=``: tiles scored by BLAS, merged into the heaps."""
    u, v, seen, users = topk_problem

    def score(block):
        return u[block] @ v.T

    def factors(block):
        return ranking.FactorScores(u[block], v)

    ranking.recommend(score, users[:50], seen, TOPK_K, factors=factors)  # compile
    benchmark(ranking.recommend, score, users, seen, TOPK_K, factors=factors)


def test_calibration_1_after_topk(benchmark, calibration_data):
    _calibration(benchmark, calibration_data)


# -- ALS half-steps -------------------------------------------------------------------------

ALS_K = 32


def _factors(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, k), dtype=np.float32) * 0.1


def test_als_implicit_cg_halfstep(benchmark, ml100k):
    conf = ml100k.ratings.to_csr()
    conf.data = 1.0 + conf.data
    rows = Interactions.from_scipy(conf).by_user
    users, items = _factors(rows.n_rows, ALS_K, 0), _factors(rows.n_cols, ALS_K, 1)

    def half_step() -> None:
        gram = kernels.gram(items, np.float32(0.1))
        kernels.implicit_cg_halfstep(rows.indptr, rows.indices, rows.values, gram, items,
                                     users, 3)  # fmt: skip

    half_step()  # compile or load numba's cache outside the timing
    benchmark(half_step)


@pytest.mark.parametrize(("solver", "k"), [("cg", ALS_K), ("cholesky", ALS_K // 2)])
def test_als_explicit_halfstep(benchmark, ml100k, solver: str, k: int):
    rows = Interactions.from_ratings(ml100k.ratings).by_user
    n = rows.n_rows
    items, item_bias = _factors(rows.n_cols, k, 1), np.zeros(rows.n_cols, np.float32)
    users, user_bias = _factors(n, k, 0), np.zeros(n, np.float32)
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


def test_calibration_2_after_als(benchmark, calibration_data):
    _calibration(benchmark, calibration_data)


# -- metrics --------------------------------------------------------------------------------

METRIC_USERS, METRIC_ITEMS, METRIC_TEST, METRIC_K = 5_000, 5_000, 50_000, 20


@pytest.fixture(scope="module")
def metric_problem():
    rng = np.random.default_rng(1)
    test = synthetic.generate(METRIC_USERS, METRIC_ITEMS, METRIC_TEST, seed=1).ratings
    # top-20 lists over the whole catalogue: distinct items per row, popular ones more often
    # (so a share of them are hits), padded with NO_ITEM where a list ran short
    top = np.argsort(rng.random((METRIC_USERS, 2 * METRIC_K)), axis=1)[:, :METRIC_K]
    top = (top * 37 + rng.integers(0, 3, (METRIC_USERS, 1))).astype(np.int32) % METRIC_ITEMS
    top[:, -1] = np.where(rng.random(METRIC_USERS) < 0.05, ranking.NO_ITEM, top[:, -1])
    return test, top


def test_metrics_ranking(benchmark, metric_problem):
    test, top = metric_problem

    def evaluate() -> dict[str, float]:
        keys, users = relevant_pairs(test, None)
        n_items = test.n_items
        hits = metrics.hits_matrix(top[users], users, keys, n_items)
        n_rel = np.bincount((keys // n_items).astype(np.int64), minlength=test.n_users)[users]
        out = {}
        for k in (10, METRIC_K):
            for name, values in metrics.ranking_metrics(hits, n_rel, k).items():
                out[f"{name}@{k}"] = float(values.mean())
            out[f"coverage@{k}"] = metrics.coverage(top[users, :k], n_items)
        return out

    result = benchmark(evaluate)
    assert 0.0 < result[f"recall@{METRIC_K}"] < 1.0


def test_calibration_3_after_metrics(benchmark, calibration_data):
    _calibration(benchmark, calibration_data)


# -- split ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "stratified", "temporal"])
def test_split(benchmark, ml100k, method: str):
    spec = splits.SplitSpec(method=method, test_fraction=0.2, seed=0)
    fold_of_row = benchmark(splits.assign, ml100k.ratings, spec)
    assert 0.1 < float(np.mean(fold_of_row == 0)) < 0.3


def test_calibration_4_after_split(benchmark, calibration_data):
    _calibration(benchmark, calibration_data)


# -- load -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k_files(ml100k, tmp_path_factory) -> tuple[Path, dict, Path]:
    """A copy of ML-100k's dataset cache, and its ratings in ``u.data``'s layout."""
    work = tmp_path_factory.mktemp("load")
    source = datasets.source_for("ml-100k")
    cache = work / "ml-100k.npz"
    save_cache(ml100k, cache, source.stamp)
    r = ml100k.ratings
    lines = np.column_stack([ml100k.user_ids[r.users].astype(np.int64),
                             ml100k.item_ids[r.items].astype(np.int64),
                             r.ratings.astype(np.int64), r.timestamps])  # fmt: skip
    (work / "raw").mkdir()
    np.savetxt(work / "raw" / "u.data", lines, fmt="%d", delimiter="\t")
    return cache, source.stamp, work / "raw"


def test_load_cached(benchmark, ml100k_files):
    cache, stamp, _ = ml100k_files
    ds = benchmark(read_cache, cache, "ml-100k", stamp)
    assert len(ds.ratings) == 100_000


def test_load_parse_ml100k(benchmark, ml100k_files):
    _, _, raw_dir = ml100k_files

    def parse():
        raw = parse_movielens_100k(SourceFiles(raw_dir, {"ratings": "u.data"}), {})
        return build_dataset(raw, "ml-100k", (1.0, 5.0), {})

    ds = benchmark(parse)
    assert len(ds.ratings) == 100_000


def test_calibration_5_end(benchmark, calibration_data):
    _calibration(benchmark, calibration_data)
