"""Sparse SVD adapters: PureSVD is exactly U S V^T; SVD predicts ratings on the rating scale."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from recbench_adapters import scipy as scipy_adapters

from bench.data import datasets
from bench.data.model import Dataset, Ratings, TrainSet
from bench.errors import UserError


@cache
def ml100k() -> Dataset:
    """ML-100k from the data layer (offline: the PyPI fallback)."""
    return datasets.load("ml-100k")


def synthetic(n_users: int = 60, n_items: int = 40, density: float = 0.2) -> TrainSet:
    """Seeded random ratings 1..5 with a few users and items left without any row."""
    rng = np.random.default_rng(7)
    mask = rng.random((n_users, n_items)) < density
    mask[-1, :] = False  # a user with no train rows
    mask[:, -1] = False  # an item with no train rows
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    r = Ratings(users.astype(np.int32), items.astype(np.int32), ratings, None, n_users, n_items)
    return TrainSet(r, (1.0, 5.0))


def test_puresvd_scores_equal_u_s_vt_computed_directly() -> None:
    train = synthetic()
    model = scipy_adapters.PureSVD(rank=5).fit(train)
    dense = train.ratings.to_csr(np.ones(len(train.ratings), np.float32)).toarray()
    u, s, vt = np.linalg.svd(dense.astype(np.float64), full_matrices=False)
    expected = (u[:, :5] * s[:5]) @ vt[:5]
    warm_users = np.arange(train.n_users - 1, dtype=np.int32)
    np.testing.assert_allclose(model.score(warm_users), expected[:-1], atol=1e-4)


def test_puresvd_ranks_a_user_without_train_rows_by_popularity() -> None:
    train = synthetic()
    model = scipy_adapters.PureSVD(rank=5).fit(train)
    cold = np.array([train.n_users - 1], dtype=np.int32)
    np.testing.assert_array_equal(model.score(cold)[0], train.ratings.item_counts())


def test_svd_predicts_baseline_plus_low_rank_residual_within_the_scale() -> None:
    train = synthetic()
    model = scipy_adapters.SVD(rank=3, shrinkage=0.0).fit(train)
    all_users = np.repeat(np.arange(train.n_users), train.n_items)
    all_items = np.tile(np.arange(train.n_items), train.n_users)
    predictions = model.predict(all_users, all_items)
    assert predictions.dtype == np.float32
    assert predictions.min() >= 1.0 and predictions.max() <= 5.0
    np.testing.assert_allclose(
        model.score(np.arange(train.n_users)).ravel(), predictions, atol=1e-5
    )
    # A cold user / item gets the baseline: global mean plus the other side's bias.
    cold_user, cold_item = train.n_users - 1, train.n_items - 1
    expected = np.clip(model.global_mean_ + model.item_bias_[:-1], 1.0, 5.0)
    np.testing.assert_allclose(model.score(np.array([cold_user]))[0, :-1], expected, rtol=1e-5)
    assert model.predict(np.array([0]), np.array([cold_item]))[0] == pytest.approx(
        np.clip(model.global_mean_ + model.user_bias_[0], 1.0, 5.0), rel=1e-5
    )


def test_svd_rating_error_on_ml100k_matches_classic_matrix_factorisation() -> None:
    """Random 80/20 split, bound 0.95: Surprise's README reports SVD at RMSE 0.934 on ML-100k
    (5-fold CV), and its folds in results/published/runs/all.jsonl give 0.923-0.948."""
    data = ml100k()
    test_rows = np.random.default_rng(0).random(len(data.ratings)) < 0.2
    train = data.ratings.take(np.flatnonzero(~test_rows))
    test = data.ratings.take(np.flatnonzero(test_rows))
    model = scipy_adapters.SVD().fit(TrainSet(train, data.rating_scale))
    rmse = float(np.sqrt(np.mean((model.predict(test.users, test.items) - test.ratings) ** 2)))
    assert rmse < 0.95


def test_rank_beyond_the_matrix_is_a_user_error() -> None:
    with pytest.raises(UserError, match="rank must be between"):
        scipy_adapters.PureSVD(rank=40).fit(synthetic())
