"""PyTorch neural CF adapters on ML-100k slices: determinism at one thread, sampled
negatives, full-catalogue scores, and a ranking better than popularity."""

from __future__ import annotations

import numpy as np
import pytest

try:
    from recbench_adapters import torch as torch_adapters
except ImportError as exc:  # torch not installed
    pytest.skip(f"torch adapters unavailable here: {exc}", allow_module_level=True)

from protocols import per_user_split
from recbench_adapters.baselines import Popularity

from bench.data.model import Ratings, TrainSet
from bench.evaluation.evaluate import MetricSpec, evaluate
from bench.models import neural

SLICE_USERS = 300


@pytest.fixture(scope="module")
def ml100k_slice(ml100k) -> tuple[TrainSet, Ratings, Ratings]:
    rows = np.flatnonzero(ml100k.ratings.users < SLICE_USERS)
    train, test = per_user_split(ml100k.ratings.take(rows))
    trainset = TrainSet(train, ml100k.rating_scale, ml100k.item_features, ml100k.user_features)
    return trainset, train, test


def test_negatives_never_include_train_positives(ml100k):
    interactions = ml100k.ratings.interactions()
    users = np.repeat(np.arange(ml100k.n_users), 50)
    negatives = neural.sample_negatives(interactions, users, 4, np.random.default_rng(0))
    assert negatives.shape == (len(users), 4)
    rows = np.repeat(users, 4)
    assert not interactions[rows, negatives.reshape(-1)].any()
    # ... while still covering the catalogue
    assert len(np.unique(negatives)) > 0.95 * ml100k.n_items


@pytest.mark.parametrize("cls", [torch_adapters.GMF, torch_adapters.NeuMF, torch_adapters.MLP],
                         ids=lambda c: c.name)  # fmt: skip
def test_one_thread_fits_are_identical(cls, ml100k_slice):
    trainset, train, _ = ml100k_slice
    users = np.arange(0, SLICE_USERS, 7)
    first = cls(epochs=2, seed=5, threads=1).fit(trainset).score(users)
    second = cls(epochs=2, seed=5, threads=1).fit(trainset).score(users)
    np.testing.assert_array_equal(first, second)
    other = cls(epochs=2, seed=6, threads=1).fit(trainset).score(users)
    assert not np.array_equal(first, other)  # the seed matters


@pytest.mark.parametrize("cls", [torch_adapters.NCF, torch_adapters.NeuMF, torch_adapters.MLP],
                         ids=lambda c: c.name)  # fmt: skip
def test_full_catalogue_scores_equal_the_pairwise_forward(cls, ml100k_slice):
    trainset, *_ = ml100k_slice
    model = cls(epochs=1, seed=0).fit(trainset)
    users = np.arange(0, SLICE_USERS, 11)
    block = model.score(users)  # first layer split into user and item parts, batch-wise
    u = np.repeat(users, trainset.n_items)
    i = np.tile(np.arange(trainset.n_items), len(users))
    pairwise = neural.predict_pairs(model.model_, u, i, 1).reshape(block.shape)
    np.testing.assert_allclose(block, pairwise, rtol=1e-5, atol=1e-5)


def test_neumf_ranks_better_than_popularity(ml100k_slice):
    trainset, train, test = ml100k_slice
    spec = MetricSpec(ks=(10,), threshold=None)
    neumf = torch_adapters.NeuMF(seed=0).fit(trainset)
    popularity = Popularity().fit(trainset)
    ours = evaluate(neumf, train, test, spec).metrics["ndcg@10"]
    baseline = evaluate(popularity, train, test, spec).metrics["ndcg@10"]
    assert ours > baseline * 1.1, (ours, baseline)


def test_rating_mlp_uses_side_features_and_beats_the_mean(ml100k_slice):
    trainset, train, test = ml100k_slice
    model = torch_adapters.MLP(seed=0).fit(trainset)
    assert model.fitted_info()["side_features"] == ["user", "item"]
    est = model.predict(test.users, test.items)
    low, high = trainset.rating_scale
    assert est.min() >= low and est.max() <= high
    rmse = float(np.sqrt(np.mean((est - test.ratings) ** 2)))
    mean_rmse = float(np.sqrt(np.mean((train.ratings.mean() - test.ratings) ** 2)))
    assert rmse < 0.97 * mean_rmse, (rmse, mean_rmse)
