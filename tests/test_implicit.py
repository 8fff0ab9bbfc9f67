"""implicit adapters on ML-100k: they rank as implicit itself does, and handle cold users."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from protocols import per_user_split
from recbench_adapters import implicit as implicit_adapters

from bench.data import datasets
from bench.data.model import Dataset, Ratings, TrainSet


@cache
def ml100k() -> Dataset:
    """ML-100k from the data layer (offline: the PyPI fallback)."""
    return datasets.load("ml-100k")


def ndcg_at_10(scores: np.ndarray, train: Ratings, test: Ratings, users: np.ndarray) -> float:
    """Binary-gain NDCG@10 over all items the user has not rated in train."""
    scores = scores.astype(np.float64)
    scores[train.to_csr()[users].nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    truth = test.to_csr()[users]
    hits = truth[np.arange(len(users))[:, None], top].toarray() > 0
    discount = 1.0 / np.log2(np.arange(2, 12))
    n_relevant = np.minimum(np.diff(truth.indptr), 10)
    ideal = np.cumsum(discount)[n_relevant - 1]
    return float(((hits * discount).sum(axis=1) / ideal).mean())


ADAPTERS = [
    implicit_adapters.ALS,
    implicit_adapters.BPR,
    implicit_adapters.LMF,
    implicit_adapters.CosineKNN,
    implicit_adapters.BM25KNN,
    implicit_adapters.TFIDFKNN,
]


@pytest.mark.parametrize("adapter_cls", ADAPTERS, ids=lambda c: c.name)
def test_scores_rank_like_implicits_own_recommend(adapter_cls: type) -> None:
    data = ml100k()
    train = TrainSet(data.ratings, data.rating_scale)
    fewer_epochs = {"iterations": 20} if "iterations" in adapter_cls.param_names() else {}
    model = adapter_cls(threads=2, **fewer_epochs).fit(train)
    assert model.model_.num_threads == 2  # the runner's thread count, not the library default
    users = np.arange(0, data.n_users, 37, dtype=np.int32)
    scores = model.score(users)
    assert scores.shape == (len(users), data.n_items) and scores.dtype == np.float32
    # The harness excludes train items; implicit's recommend does the same by default.
    seen = model.user_items_[users]
    ids, lib_scores = model.model_.recommend(users, seen, N=10, filter_already_liked_items=True)
    masked = scores.copy()
    masked[seen.nonzero()] = -np.inf
    ours = np.take_along_axis(masked, ids, axis=1)
    np.testing.assert_allclose(ours, lib_scores, rtol=1e-4, atol=1e-5)
    # and implicit's top 10 are our top 10 (up to ties at the cut-off)
    tenth = np.sort(masked, axis=1)[:, -10]
    assert np.all(ours >= tenth[:, None] - 1e-5)


def test_users_and_items_without_train_rows_get_popularity_and_zero_scores() -> None:
    data = ml100k()
    cold_user, cold_item = 0, 0
    keep = (data.ratings.users != cold_user) & (data.ratings.items != cold_item)
    train = TrainSet(data.ratings.take(np.flatnonzero(keep)), data.rating_scale)
    popularity = train.ratings.item_counts().astype(np.float32)
    for adapter_cls in (implicit_adapters.ALS, implicit_adapters.CosineKNN):
        model = adapter_cls(threads=1).fit(train)
        scores = model.score(np.array([cold_user, 1], dtype=np.int32))
        np.testing.assert_array_equal(scores[0], popularity)
        assert np.isfinite(scores).all()


def test_confidence_feedback_reaches_als() -> None:
    data = ml100k()
    train = TrainSet(data.ratings, data.rating_scale)
    model = implicit_adapters.ALS(feedback="confidence", feedback_alpha=2.0, iterations=2)
    prepared = model.bind(train)
    assert prepared.data.min() == 3.0 and prepared.data.max() == 11.0  # 1 + 2 * rating


@pytest.mark.slow
def test_als_ranks_ml100k_like_the_published_implicit_models() -> None:
    """Microsoft Recommenders protocol: SAR reaches NDCG@10 0.38, Cornac BPR 0.44."""
    data = ml100k()
    train, test = per_user_split(data.ratings)
    model = implicit_adapters.ALS(factors=32, regularization=1.0, threads=2)
    model.fit(TrainSet(train, data.rating_scale))
    users = np.unique(test.users)
    assert ndcg_at_10(model.score(users), train, test, users) > 0.40
