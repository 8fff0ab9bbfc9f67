"""The fused top-K (``bench.kernels.topk``) and the factor path of ``recommend`` give exactly
the rankings of the former numpy implementation, ties included."""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache
from unittest import mock

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recbench_adapters import implicit as implicit_adapters
from recbench_adapters import recbench as recbench_adapters
from recbench_adapters import scipy as scipy_adapters

from bench.data import datasets
from bench.data.model import TrainSet
from bench.evaluation import ranking
from bench.evaluation.ranking import (
    NO_ITEM,
    FactorScores,
    exclude,
    recommend,
    seen_rows,
    select,
    select_factors,
    tie_order,
    top_k,
    top_k_by_position,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F32_MAX = np.finfo(np.float32).max


# ----------------------------------------------------------------------------------------
# The reference: the numpy implementation the kernel replaced, copied unchanged.
# ----------------------------------------------------------------------------------------


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first; ``NO_ITEM`` pads -inf rows.

    Equal scores are ranked in ``tie_order``.
    """
    order = tie_order(scores.shape[1])
    best = top_k_by_position(scores[:, order], k)  # the former numpy selection
    return np.where(best >= 0, order[np.maximum(best, 0)], NO_ITEM).astype(np.int32)


def reference_recommend(score, users, seen, k, excluded_items=None) -> np.ndarray:
    """The former ``recommend``: score a block, ``exclude``, ``reference_top_k``."""
    n_items = seen.shape[1]
    step = ranking.batch_size(n_items)
    tops = []
    for lo in range(0, len(users), step):
        block = users[lo : lo + step]
        scores = np.array(score(block), dtype=np.float32)
        exclude(scores, block, seen)
        if excluded_items is not None:
            scores[:, excluded_items] = -np.inf
        tops.append(reference_top_k(scores, k))
    return np.concatenate(tops) if tops else np.empty((0, k), np.int32)


@contextmanager
def numba_threads(n: int):
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# ----------------------------------------------------------------------------------------
# Random inputs with many ties
# ----------------------------------------------------------------------------------------

#: few distinct values, so most cells tie; NaN and the infinities among them
POOL = np.array([-np.inf, np.nan, -1.0, 0.0, -0.0, 0.5, 1.0, 2.0, F32_MAX, -F32_MAX, np.inf])


def tied_scores(rng: np.random.Generator, shape, n_values: int, nan: bool) -> np.ndarray:
    pool = POOL if nan else POOL[~np.isnan(POOL)]
    values = rng.choice(pool, size=n_values, replace=True)
    return values[rng.integers(0, n_values, size=shape)]


def random_seen(rng: np.random.Generator, n_users: int, n_items: int) -> sp.csr_matrix:
    """A seen matrix, sometimes with unsorted indices within rows."""
    dense = rng.random((n_users, n_items)) < rng.choice([0.0, 0.2, 0.6, 1.0])
    seen = sp.csr_matrix(dense.astype(np.float32))
    if rng.random() < 0.5:  # same sets, indices shuffled within each row
        for u in range(n_users):
            lo, hi = seen.indptr[u], seen.indptr[u + 1]
            seen.indices[lo:hi] = rng.permutation(seen.indices[lo:hi])
        seen = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=seen.shape)
        seen.has_sorted_indices = False
    return seen


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_users = draw(st.integers(1, 9))
    n_items = draw(st.integers(1, 40))
    k = draw(st.sampled_from([0, 1, 2, 3, 5, 10, n_items - 1, n_items, n_items + 3]))
    threads = draw(st.sampled_from([1, 2]))
    return rng, n_users, n_items, max(k, 0), threads


@SETTINGS
@given(cases(), st.integers(1, 6), st.sampled_from([np.float32, np.float64]))
def test_top_k_equals_the_numpy_reference(case, n_values, dtype):
    rng, n_users, n_items, k, threads = case
    scores = tied_scores(rng, (n_users, n_items), n_values, nan=False).astype(dtype)
    with numba_threads(threads):
        ours = top_k(scores, k)
    ref = reference_top_k(scores.copy(), k)
    assert ours.dtype == np.int32 and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@SETTINGS
@given(cases(), st.integers(1, 6), st.booleans(), st.integers(1, 4))
def test_recommend_equals_the_numpy_reference(case, n_values, with_excluded, step):
    rng, n_users, n_items, k, threads = case
    table = tied_scores(rng, (n_users, n_items), n_values, nan=True).astype(np.float32)
    seen = random_seen(rng, n_users, n_items)
    users = rng.integers(0, n_users, size=rng.integers(0, 2 * n_users + 1)).astype(np.int32)
    excluded = rng.choice(n_items, size=rng.integers(0, n_items + 1)) if with_excluded else None
    expected = reference_recommend(lambda b: table[b], users, seen, k, excluded)
    with numba_threads(threads), mock.patch.object(ranking, "batch_size", lambda n: step):
        ours = recommend(lambda b: table[b], users, seen, k, excluded)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, expected)


def random_factors(rng: np.random.Generator, n_users: int, n_items: int) -> dict:
    """Small integer factors (so dot products tie exactly), sometimes a bias, fixed items,
    cold rows and a non-finite entry."""
    f = int(rng.integers(0, 4))
    u = rng.integers(-1, 3, size=(n_users, f)).astype(np.float32)
    v = rng.integers(-1, 3, size=(n_items, f)).astype(np.float32)
    if f and rng.random() < 0.3:
        v[rng.integers(n_items), rng.integers(f)] = rng.choice([np.inf, -np.inf, np.nan])
    if f and rng.random() < 0.2:
        u[rng.integers(n_users), rng.integers(f)] = rng.choice([np.inf, np.nan])
    params = {
        "user_vectors": u,
        "item_vectors": v if rng.random() < 0.5 else np.asfortranarray(v),
        "item_bias": (rng.integers(-2, 2, n_items) / 2).astype(np.float32)
        if rng.random() < 0.5
        else None,
    }
    if rng.random() < 0.5:
        params["fixed_items"] = rng.choice(n_items, size=rng.integers(0, n_items + 1))
        params["fixed_score"] = rng.choice([-F32_MAX, 0.0, 1.0, -np.inf])
    if rng.random() < 0.5:
        params["score_rows"] = rng.random(n_users) < 0.3
    return params


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0
@SETTINGS
@given(cases(), st.integers(1, 9), st.booleans(), st.integers(1, 4))
def test_factor_path_equals_scoring_the_block(case, chunk, with_excluded, step):
    rng, n_users, n_items, k, threads = case
    params = random_factors(rng, n_users, n_items)
    popularity = rng.integers(0, 3, n_items).astype(np.float32)  # what cold rows get

    def factors(block):
        p = dict(params, user_vectors=params["user_vectors"][block])
        if p.get("score_rows") is not None:
            p["score_rows"] = p["score_rows"][block]
        return FactorScores(**p)

    def score(block):  # an adapter's ``score`` built on ``FactorScores.block``
        fs = factors(block)
        scores = fs.block()
        if fs.score_rows is not None:
            scores[fs.score_rows] = popularity
        return scores

    seen = random_seen(rng, n_users, n_items)
    users = rng.integers(0, n_users, size=rng.integers(0, 2 * n_users + 1)).astype(np.int32)
    excluded = rng.choice(n_items, size=rng.integers(0, n_items + 1)) if with_excluded else None
    with (
        numba_threads(threads),
        mock.patch.object(ranking, "ITEM_CHUNK", chunk),
        mock.patch.object(ranking, "batch_size", lambda n: step),
    ):
        fused = recommend(score, users, seen, k, excluded, factors=factors)
        by_block = recommend(score, users, seen, k, excluded)
        expected = reference_recommend(score, users, seen, k, excluded)
        # and the chunked merge itself, cold rows included, against the block
        fs = factors(np.arange(n_users))
        mask = ranking._excluded_mask(n_items, excluded)
        rows = seen_rows(seen, np.arange(n_users))
        np.testing.assert_array_equal(
            select_factors(fs, k, *rows, mask), select(fs.block(), k, *rows, mask, cap=F32_MAX)
        )
    np.testing.assert_array_equal(by_block, expected)
    np.testing.assert_array_equal(fused, expected)


# ----------------------------------------------------------------------------------------
# Hand-made cases
# ----------------------------------------------------------------------------------------


def test_all_tied_rows_follow_the_tie_order():
    n = 50
    order = tie_order(n)
    assert top_k(np.zeros((3, n), np.float32), 7).tolist() == [order[:7].tolist()] * 3
    assert top_k(np.zeros((1, n), np.float32), n)[0].tolist() == order.tolist()


def test_nan_and_minus_inf_are_never_returned_and_short_rows_are_padded():
    scores = np.array([[np.nan, -np.inf, 1.0, np.nan], [-np.inf] * 4], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[2, NO_ITEM, NO_ITEM], [NO_ITEM] * 3]
    assert top_k(scores, 9).shape == (2, 4)  # never wider than the catalogue
    assert top_k(scores, 0).shape == (2, 0)


def test_plus_inf_is_top_in_top_k_and_float32_max_in_recommend():
    scores = np.full((1, 6), F32_MAX, dtype=np.float32)
    scores[0, [1, 4]] = np.inf
    assert top_k(scores, 2)[0].tolist() == [i for i in tie_order(6) if i in (1, 4)]
    # recommend counts +inf as float32's max (``exclude``): all six tie, tie order decides
    empty = sp.csr_matrix((1, 6), dtype=np.float32)
    top = recommend(lambda b: scores[b], np.array([0]), empty, 6)
    assert top[0].tolist() == tie_order(6).tolist()


def test_seen_and_excluded_items_are_removed():
    scores = np.array([[9, 8, 7, 6, 5], [1, 2, 3, 4, 5]], dtype=np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    top = recommend(lambda b: scores[b], np.array([0, 1]), seen, 4, np.array([3]))
    assert top.tolist() == [[1, 4, NO_ITEM, NO_ITEM], [2, 1, 0, NO_ITEM]]
    assert recommend(lambda b: scores[b], np.zeros(0, np.int32), seen, 4).shape == (0, 4)


def test_the_result_does_not_depend_on_threads_or_batching():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(301, 997)).astype(np.float32)
    seen = sp.csr_matrix((rng.random((301, 997)) < 0.1).astype(np.float32))
    users = np.arange(301, dtype=np.int32)
    expected = reference_recommend(lambda b: scores[b], users, seen, 20)
    for threads in (1, 2):
        with numba_threads(threads):
            np.testing.assert_array_equal(recommend(lambda b: scores[b], users, seen, 20), expected)
            with mock.patch.object(ranking, "batch_size", lambda n: 37):
                top = recommend(lambda b: scores[b], users, seen, 20)
            np.testing.assert_array_equal(top, expected)


def test_score_rows_come_from_score():
    u = np.array([[1.0], [2.0]], dtype=np.float32)
    v = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    empty = sp.csr_matrix((2, 3), dtype=np.float32)

    def factors(block):
        return FactorScores(u[block], v, score_rows=block == 1)

    def score(block):
        scores = factors(block).block()
        scores[block == 1] = [5.0, 4.0, 0.0]  # user 1 ranks "by popularity"
        return scores

    top = recommend(score, np.array([0, 1]), empty, 3, factors=factors)
    assert top.tolist() == [[2, 1, 0], [0, 1, 2]]


def test_fixed_items_and_bias():
    fs = FactorScores(
        np.array([[1.0, 0.0]]), np.eye(2, dtype=np.float32)[[0, 1, 0]],
        item_bias=np.array([0.5, 0.0, 0.25]), fixed_items=np.array([2]), fixed_score=-1.0,
    )  # fmt: skip
    assert fs.block().tolist() == [[1.5, 0.0, -1.0]]


def test_factors_of_the_wrong_shape_are_an_error():
    def factors(block):
        return FactorScores(np.zeros((len(block), 2)), np.zeros((4, 2)))

    with pytest.raises(ValueError, match="factor_scores"):
        recommend(None, np.array([0]), sp.csr_matrix((1, 3)), 2, name="m", factors=factors)


# ----------------------------------------------------------------------------------------
# Real fitted factor models: the fused path ranks exactly like their score block
# ----------------------------------------------------------------------------------------


@cache
def small_train() -> TrainSet:
    """Synthetic data with a few users and items left without train rows."""
    data = datasets.load("synthetic:users=300,items=200,ratings=6000,seed=0")
    r = data.ratings
    keep = ~np.isin(r.users, [0, 7, 150]) & ~np.isin(r.items, [3, 60, 199])
    return TrainSet(r.take(np.flatnonzero(keep)), data.rating_scale)


FACTOR_MODELS = [
    lambda: recbench_adapters.ImplicitALS(factors=8, iterations=3),
    lambda: implicit_adapters.ALS(factors=8, iterations=3),
    lambda: implicit_adapters.BPR(factors=8, iterations=5),
    lambda: implicit_adapters.LMF(factors=8, iterations=5),
    lambda: scipy_adapters.PureSVD(rank=8),
]


@pytest.mark.parametrize("make", FACTOR_MODELS, ids=lambda f: f().name)
@pytest.mark.parametrize("chunk", [ranking.ITEM_CHUNK, 64, 7])
def test_fitted_factor_models_rank_the_same_by_factors_and_by_score(make, chunk):
    train = small_train()
    model = make().fit(train)
    seen = train.ratings.to_csr(np.ones(len(train.ratings), np.float32))
    users = np.arange(train.n_users, dtype=np.int32)
    warm = np.flatnonzero(train.ratings.item_counts() > 0)
    assert model.factor_scores(users).score_rows[[0, 7, 150]].all()
    with mock.patch.object(ranking, "ITEM_CHUNK", chunk):
        for k, excluded in ((10, None), (train.n_items, None), (10, warm)):
            expected = reference_recommend(model.score, users, seen, k, excluded)
            by_score = recommend(model.score, users, seen, k, excluded)
            fused = recommend(model.score, users, seen, k, excluded, factors=model.factor_scores)
            np.testing.assert_array_equal(by_score, expected)
            np.testing.assert_array_equal(fused, expected)


@SETTINGS
@given(cases(), st.integers(1, 6), st.booleans(), st.integers(1, 4))
def test_shared_scores_path_equals_scoring_the_block(case, n_values, with_excluded, step):
    """One score vector for every user (popularity): ordering the catalogue once and
    walking it per user gives the block path's result, ties, NaN and infinities included."""
    rng, n_users, n_items, k, threads = case
    vector = tied_scores(rng, (n_items,), n_values, nan=True).astype(np.float32)
    seen = random_seen(rng, n_users, n_items)
    users = rng.integers(0, n_users, size=rng.integers(0, 2 * n_users + 1)).astype(np.int32)
    excluded = rng.choice(n_items, size=rng.integers(0, n_items + 1)) if with_excluded else None

    def score(block):
        return np.broadcast_to(vector, (len(block), n_items)).copy()

    expected = reference_recommend(score, users, seen, k, excluded)
    with (
        numba_threads(threads),
        mock.patch.object(ranking, "batch_size", lambda n: step),
        mock.patch.object(ranking, "SHARED_BLOCK", step),
    ):
        ours = recommend(score, users, seen, k, excluded, shared=lambda: vector)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, expected)
