"""Baselines: fitted on train rows only, sensible fallbacks, deterministic rankings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import surprise
from protocols import cold_holdout
from recbench_adapters import baselines
from recbench_adapters import surprise as surprise_adapters

from bench.data import datasets
from bench.data.model import Ratings, TrainSet
from bench.execution.registry import available

ALL = [
    baselines.GlobalMean,
    baselines.UserMean,
    baselines.ItemMean,
    baselines.Bias,
    baselines.Popularity,
    baselines.Random,
]
RATING_MODELS = [baselines.GlobalMean, baselines.UserMean, baselines.ItemMean, baselines.Bias]


@pytest.fixture(scope="module")
def data() -> dict:
    """80/20 split of ML-100k where 10 users and 30 items have no train rows."""
    ds = datasets.load("ml-100k")
    r = ds.ratings
    test, cold_users, cold_items, rng = cold_holdout(r, 1, 10, 30)
    train_rows = np.flatnonzero(~test)
    return {
        "dataset": ds,
        "train": TrainSet(r.take(train_rows), ds.rating_scale),
        "train_rows": train_rows,
        "test_rows": np.flatnonzero(test),
        "cold_users": cold_users,
        "cold_items": cold_items,
    }


def train_frame(train: TrainSet) -> pd.DataFrame:
    r = train.ratings
    return pd.DataFrame({"u": r.users, "i": r.items, "r": r.ratings.astype(np.float64)})


def test_means_are_train_means_with_global_fallback(data):
    train, frame = data["train"], train_frame(data["train"])
    mu = frame["r"].mean()
    n_users, n_items = train.n_users, train.n_items
    users = np.repeat(np.arange(n_users), 3)
    items = np.resize(np.arange(n_items), len(users))

    assert baselines.GlobalMean().fit(train).predict(users, items) == pytest.approx(mu)

    user_mean = frame.groupby("u")["r"].mean().reindex(range(n_users), fill_value=mu)
    got = baselines.UserMean().fit(train).predict(users, items)
    np.testing.assert_allclose(got, user_mean.to_numpy()[users], rtol=1e-6)
    assert got[np.isin(users, data["cold_users"])] == pytest.approx(mu)

    item_mean = frame.groupby("i")["r"].mean().reindex(range(n_items), fill_value=mu)
    got = baselines.ItemMean().fit(train).predict(users, items)
    np.testing.assert_allclose(got, item_mean.to_numpy()[items], rtol=1e-6)
    assert got[np.isin(items, data["cold_items"])] == pytest.approx(mu)


@pytest.mark.parametrize("cls", ALL, ids=[c.name for c in ALL])
def test_changing_test_ratings_never_changes_the_output(cls, data):
    """The point of the harness: a baseline's output depends on train rows only."""
    ds, train_rows = data["dataset"], data["train_rows"]
    r = ds.ratings
    altered_ratings = r.ratings.copy()
    altered_ratings[data["test_rows"]] = 6.0 - altered_ratings[data["test_rows"]]
    altered = Ratings(r.users, r.items, altered_ratings, r.timestamps, r.n_users, r.n_items)

    users = np.arange(r.n_users)
    outputs = []
    for ratings in (r, altered):
        model = cls().fit(TrainSet(ratings.take(train_rows), ds.rating_scale))
        outputs.append(model.score(users))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_item_mean_differs_from_a_leaky_all_data_mean(data):
    """Guard against the classic error of computing baselines on train + test."""
    ds = data["dataset"]
    r = ds.ratings
    model = baselines.ItemMean().fit(data["train"])
    all_data_mean = np.bincount(r.items, r.ratings, r.n_items) / np.maximum(r.item_counts(), 1)
    own = model.score(np.array([0]))[0]
    warm = data["train"].ratings.item_counts() > 0
    assert np.mean(np.abs(own[warm] - all_data_mean[warm]) > 1e-3) > 0.5


def test_bias_matches_surprise_baseline_only_als(data):
    """Same alternating closed-form steps as Surprise's BaselineOnly (ALS, reg_u 15, reg_i 10)."""
    train = data["train"]
    ours = baselines.Bias(reg_user=15.0, reg_item=10.0, n_iters=10).fit(train)
    theirs = surprise_adapters.BaselineOnly().fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_allclose(ours.score(users), theirs.score(users), atol=1e-5)


def test_bias_regularisation_shrinks_biases_and_clips(data):
    train = data["train"]
    weak = baselines.Bias(reg_user=0.0, reg_item=0.0).fit(train)
    strong = baselines.Bias(reg_user=100.0, reg_item=100.0).fit(train)
    assert np.abs(strong.item_term_).mean() < np.abs(weak.item_term_).mean()
    assert np.isfinite(weak.item_term_).all() and np.isfinite(weak.user_term_).all()
    unclipped = baselines.Bias(reg_user=0.0, reg_item=0.0, clip=False).fit(train)
    scores = unclipped.score(np.arange(train.n_users))
    assert scores.max() > 5.0  # so clipping below is doing something
    clipped = weak.score(np.arange(train.n_users))
    assert clipped.min() >= 1.0 and clipped.max() <= 5.0


def test_popularity_ranks_by_train_count(data):
    train = data["train"]
    model = baselines.Popularity().fit(train)
    counts = train.ratings.item_counts()
    users = np.concatenate([np.arange(5), data["cold_users"][:2]])
    scores = model.score(users)
    assert scores.shape == (len(users), train.n_items)
    for row in scores:  # every user, cold ones included, gets the train-count order
        np.testing.assert_array_equal(row, counts)
    top = np.argsort(-scores[0], kind="stable")[:10]
    assert set(top) == set(np.argsort(-counts, kind="stable")[:10])
    assert (scores[:, data["cold_items"]] == 0).all()
    assert not model.predicts_ratings


def test_random_is_seeded_and_independent_of_batching(data):
    train = data["train"]
    users = np.arange(train.n_users)
    scores = baselines.Random(seed=5).fit(train).score(users)
    batch = baselines.Random(seed=5).fit(train).score(users[7:9])
    np.testing.assert_array_equal(batch, scores[7:9])
    assert not np.array_equal(baselines.Random(seed=6).fit(train).score(users), scores)
    assert 0.0 < scores.min() and scores.max() < 1.0
    assert scores.mean() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("seed", [0, 5, 2**63 + 5, -3])
def test_random_block_kernel_gives_the_pair_draws(seed):
    """``Random.score``'s parallel block kernel gives exactly ``pair_uniform`` of each (user,
    item) pair (as float32), for any seed and user codes."""
    from bench.kernels.pair_random import pair_uniform, pair_uniform_block

    users = np.random.default_rng(1).integers(0, 500_000, 40)
    n_items = 777
    pairs = pair_uniform(seed, np.repeat(users, n_items), np.tile(np.arange(n_items), 40))
    np.testing.assert_array_equal(
        pair_uniform_block(seed, users, n_items), pairs.astype(np.float32).reshape(40, n_items)
    )


@pytest.mark.parametrize("cls", ALL, ids=[c.name for c in ALL])
def test_params_round_trip_and_fit_returns_self(cls, data):
    model = cls()
    assert model.fit(data["train"]) is model
    params = model.get_params()
    assert params == cls.default_params()
    assert json.loads(json.dumps(params)) == params
    assert cls(**params).get_params() == params
    assert set(cls.search_space) <= set(params)
    assert cls.library == "recbench"


@pytest.mark.parametrize("cls", RATING_MODELS, ids=[c.name for c in RATING_MODELS])
def test_rating_models_score_equals_predict_and_handles_unknown_codes(cls, data):
    train = data["train"]
    model = cls().fit(train)
    users = np.array([0, 3, data["cold_users"][0]])
    scores = model.score(users)
    u = np.repeat(users, train.n_items)
    i = np.tile(np.arange(train.n_items), len(users))
    np.testing.assert_array_equal(scores.ravel(), model.predict(u, i))
    out = model.predict(np.array([-1, 10_000]), np.array([0, 10_000]))
    assert np.isfinite(out).all()


def test_surprise_readers_agree_on_the_global_mean(data):
    """Cross-check of GlobalMean against Surprise's own trainset for the same rows."""
    frame = train_frame(data["train"])
    reader = surprise.Reader(rating_scale=(1, 5))
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    model = baselines.GlobalMean().fit(data["train"])
    assert model.global_mean_ == pytest.approx(trainset.global_mean, rel=1e-12)


def test_all_baselines_are_registered():
    assert {c.name for c in ALL} <= set(available())
