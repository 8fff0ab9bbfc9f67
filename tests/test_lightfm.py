"""LightFM adapters on ML-100k: scores are LightFM's own, feature variants score cold entities."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import scipy.sparse as sp
from lightfm.data import Dataset as LightFMDataset
from recbench_adapters import lightfm as lightfm_adapters

from bench.data import datasets
from bench.data.model import Dataset, Features, Ratings, TrainSet
from bench.errors import UserError


@cache
def ml100k() -> Dataset:
    """ML-100k with genres and user demographics, from the data layer."""
    return datasets.load("ml-100k")


def trainset(ratings: Ratings) -> TrainSet:
    data = ml100k()
    return TrainSet(ratings, data.rating_scale, data.item_features, data.user_features)


@pytest.mark.parametrize(
    "adapter_cls", [lightfm_adapters.WARP, lightfm_adapters.BPRFeatures], ids=lambda c: c.name
)
def test_scores_are_lightfms_own_predictions(adapter_cls: type) -> None:
    data = ml100k()
    model = adapter_cls(epochs=2, threads=2).fit(trainset(data.ratings))
    users = np.array([0, 5, 500], dtype=np.int32)
    scores = model.score(users)
    assert scores.shape == (3, data.n_items) and scores.dtype == np.float32
    prepared = model.bind(trainset(data.ratings))  # the same feature matrices as in fit
    all_items = np.arange(data.n_items, dtype=np.int32)
    for row, user in enumerate(users):
        expected = model.model_.predict(
            int(user),
            all_items,
            item_features=prepared.item_features,
            user_features=prepared.user_features,
            num_threads=1,
        )
        np.testing.assert_allclose(scores[row], expected, rtol=1e-4, atol=1e-4)


def test_hybrid_features_match_lightfm_datasets_normalised_matrix() -> None:
    """With every entity warm, the matrix is what lightfm.data.Dataset builds by default."""
    genres = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32))
    ours = lightfm_adapters.hybrid_features(
        np.ones(3, dtype=bool), Features(genres, ("g=a", "g=b")), normalize=True
    )
    reference = LightFMDataset()
    reference.fit(users=[0], items=[0, 1, 2], item_features=["g=a", "g=b"])
    theirs = reference.build_item_features(
        [(0, ["g=a"]), (1, ["g=a", "g=b"]), (2, ["g=b"])], normalize=True
    )
    np.testing.assert_allclose(ours.toarray(), theirs.toarray())


def _per_user_auc(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mean over users of P(a relevant item outranks an irrelevant one)."""
    ranks = scores.argsort(axis=1).argsort(axis=1)
    n_pos = relevant.sum(axis=1)
    n_neg = relevant.shape[1] - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    auc = ((ranks * relevant).sum(axis=1) - n_pos * (n_pos - 1) / 2) / np.maximum(n_pos * n_neg, 1)
    return float(auc[ok].mean())


@pytest.mark.slow
def test_feature_variant_ranks_cold_items_from_their_genres() -> None:
    """100 items lose all train rows; WARP-features still ranks them better than chance."""
    data = ml100k()
    r = data.ratings
    rng = np.random.default_rng(0)
    cold_items = rng.choice(np.flatnonzero(r.item_counts() >= 10), 100, replace=False)
    is_cold = np.isin(r.items, cold_items)
    train, held_out = r.take(np.flatnonzero(~is_cold)), r.take(np.flatnonzero(is_cold))
    users = np.unique(held_out.users)
    relevant = held_out.to_csr()[users][:, cold_items].toarray() > 0
    auc = {}
    for adapter_cls in (lightfm_adapters.WARP, lightfm_adapters.WARPFeatures):
        model = adapter_cls(epochs=5, threads=2).fit(trainset(train))
        auc[adapter_cls.name] = _per_user_auc(model.score(users)[:, cold_items], relevant)
    assert auc["lightfm.WARP-features"] > 0.58
    assert auc["lightfm.WARP-features"] > auc["lightfm.WARP"] + 0.05


def test_cold_users_scored_from_features_or_by_popularity() -> None:
    data = ml100k()
    cold_users = np.array([3, 7], dtype=np.int32)
    train = data.ratings.take(np.flatnonzero(~np.isin(data.ratings.users, cold_users)))
    popularity = train.item_counts().astype(np.float32)
    plain = lightfm_adapters.WARP(epochs=2).fit(trainset(train))
    np.testing.assert_array_equal(plain.score(cold_users), np.tile(popularity, (2, 1)))
    hybrid = lightfm_adapters.WARPFeatures(epochs=2).fit(trainset(train))
    scores = hybrid.score(cold_users)
    assert np.isfinite(scores).all()
    # Users 3 and 7 differ in their demographics, so their scores differ too.
    assert not np.allclose(scores[0], scores[1])


def test_confidence_feedback_becomes_sample_weight() -> None:
    data = ml100k()
    model = lightfm_adapters.WARP(feedback="confidence", feedback_alpha=1.0)
    prepared = model.bind(trainset(data.ratings))
    assert np.all(prepared.interactions.data == 1.0)
    confidences = 1.0 + data.ratings.to_csr().tocoo().data
    np.testing.assert_array_equal(prepared.sample_weight.data, confidences)
    with pytest.raises(UserError, match="binary feedback"):
        lightfm_adapters.WARPkOS(feedback="confidence")


@pytest.mark.slow
def test_warp_ranks_ml100k_like_the_published_implicit_models() -> None:
    """Microsoft Recommenders protocol, per-user 75/25: SAR NDCG@10 0.38, Cornac BPR 0.44."""
    data = ml100k()
    r = data.ratings
    key = np.random.default_rng(0).random(len(r))
    order = np.lexsort((key, r.users))
    counts = r.user_counts()
    position = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
    in_train = np.zeros(len(r), dtype=bool)
    in_train[order] = position < np.repeat(np.round(counts * 0.75), counts)
    train, test = r.take(np.flatnonzero(in_train)), r.take(np.flatnonzero(~in_train))
    model = lightfm_adapters.WARP(threads=2).fit(trainset(train))
    users = np.unique(test.users)
    scores = model.score(users).astype(np.float64)
    scores[train.to_csr()[users].nonzero()] = -np.inf  # the harness's exclusion
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    truth = test.to_csr()[users]
    hits = truth[np.arange(len(users))[:, None], top].toarray() > 0
    discount = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(discount)[np.minimum(np.diff(truth.indptr), 10) - 1]
    assert ((hits * discount).sum(axis=1) / ideal).mean() > 0.40
