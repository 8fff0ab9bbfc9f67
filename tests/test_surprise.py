"""Surprise adapters: vectorised predict / score reproduce Surprise's own ``algo.predict``.

Real Surprise on real ML-100k: an 80/20 split in which 20 users and 50 items keep no train
rows, so unknown users / items (Surprise's fallbacks) are exercised on every algorithm.
"""

from __future__ import annotations

import heapq
import json

import numpy as np
import pandas as pd
import pytest
import surprise
from protocols import cold_holdout
from recbench_adapters import surprise as adapters

from bench.data import datasets
from bench.data.model import Ratings, TrainSet
from bench.execution.registry import available
from bench.kernels import neighbours

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def split() -> dict:
    """Train set with cold users / items, plus probe pairs mixing known, cold and train."""
    ds = datasets.load("ml-100k")
    r = ds.ratings
    test, cold_users, cold_items, rng = cold_holdout(r, 0, 20, 50)
    train = TrainSet(r.take(np.flatnonzero(~test)), ds.rating_scale)
    # probe users: 40 random users + 5 cold ones; items random, cold, and some train pairs
    probe_users = np.concatenate([rng.choice(r.n_users, 40, replace=False), cold_users[:5]])
    users = rng.choice(probe_users, 300)
    items = rng.integers(0, r.n_items, 300)
    items[:30] = rng.choice(cold_items, 30)
    in_train = rng.choice(np.flatnonzero(~test), 30, replace=False)
    users[30:60], items[30:60] = r.users[in_train], r.items[in_train]
    return {"train": train, "users": users, "items": items, "n_users": r.n_users}


def surprise_estimates(adapter: adapters.SurpriseAdapter, users, items) -> np.ndarray:
    """What Surprise itself predicts; raw ids are our codes."""
    algo = adapter.algo_
    return np.array([algo.predict(int(u), int(i)).est for u, i in zip(users, items, strict=True)])


CASES = [
    (adapters.SVD, {"n_epochs": 5}),
    (adapters.SVD, {"n_epochs": 5, "biased": False}),
    (adapters.SVDpp, {"n_epochs": 1, "n_factors": 5}),
    (adapters.NMF, {"n_epochs": 10}),
    (adapters.NMF, {"n_epochs": 10, "biased": True}),
    (adapters.SlopeOne, {}),
    (adapters.KNNBasic, {}),
    (adapters.KNNBasic, {"user_based": False, "k": 10, "min_k": 3}),
    (adapters.KNNWithMeans, {"sim_name": "pearson", "k": 5, "min_k": 2}),
    (adapters.KNNWithZScore, {}),
    (adapters.KNNWithZScore, {"sim_name": "cosine", "user_based": False}),
    (adapters.KNNBaseline, {}),
    (adapters.KNNBaseline, {"sim_name": "pearson_baseline", "user_based": False}),
    (adapters.CoClustering, {}),
    (adapters.BaselineOnly, {}),
    (adapters.BaselineOnly, {"bsl_method": "sgd"}),
]


@pytest.mark.parametrize(
    ("cls", "params"), CASES, ids=[f"{c.name}-{json.dumps(p)}" for c, p in CASES]
)
def test_predict_and_score_equal_surprise_predict(cls, params, split):
    adapter = cls(**params)
    assert adapter.fit(split["train"]) is adapter
    users, items = split["users"], split["items"]
    expected = surprise_estimates(adapter, users, items)

    predicted = adapter.predict(users, items)
    assert predicted.dtype == np.float32 and predicted.shape == users.shape
    np.testing.assert_allclose(predicted, expected, atol=TOLERANCE)

    probe_users, row = np.unique(users, return_inverse=True)
    scores = adapter.score(probe_users)
    assert scores.dtype == np.float32 and scores.shape == (len(probe_users), adapter.n_items_)
    np.testing.assert_allclose(scores[row, items], expected, atol=TOLERANCE)


def test_item_based_knn_whole_catalogue_path_equals_pair_path(split):
    """A large batch takes the scatter kernel, a small one the per-pair kernel: same scores."""
    adapter = adapters.KNNBaseline(user_based=False, k=10).fit(split["train"])
    everyone = np.arange(split["n_users"])
    whole = adapter.score(everyone)
    some = everyone[::50]
    np.testing.assert_allclose(adapter.score(some), whole[some], atol=1e-6)
    users, items = split["users"], split["items"]
    expected = surprise_estimates(adapter, users, items)
    np.testing.assert_allclose(whole[users, items], expected, atol=TOLERANCE)


def test_knn_ties_at_the_cut_follow_surprise():
    """Equal similarities at the k-th place: Surprise keeps the neighbour listed first."""
    # users 0..4 all agree with user 5 on item 0 (msd sim 1.0), then rate item 1 differently
    users = np.array([0, 1, 2, 3, 4, 5, 3, 1, 4, 0, 2], dtype=np.int32)
    items = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=np.int32)
    ratings = np.array([3, 3, 3, 3, 3, 3, 5, 1, 4, 2, 3], dtype=np.float32)
    train = TrainSet(Ratings(users, items, ratings, None, 6, 2), (1.0, 5.0))
    for k in (1, 2, 3):
        adapter = adapters.KNNBasic(k=k).fit(train)
        expected = adapter.algo_.predict(5, 1).est
        assert adapter.predict(np.array([5]), np.array([1]))[0] == pytest.approx(expected)
        assert adapter.score(np.array([5]))[0, 1] == pytest.approx(expected)
    assert expected == pytest.approx((5 + 1 + 4) / 3)  # the first three listed for item 1


@pytest.mark.parametrize("cls", [adapters.SVD, adapters.KNNBaseline, adapters.CoClustering])
def test_adapter_fits_the_model_surprise_itself_fits(cls, split):
    """Same rows, same seed: our trainset gives Surprise's own model, prediction for prediction."""
    train = split["train"]
    r = train.ratings
    frame = pd.DataFrame({"u": r.users.astype(int), "i": r.items.astype(int), "r": r.ratings})
    reader = surprise.Reader(rating_scale=train.rating_scale)
    native_trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    adapter = cls(n_epochs=5, seed=3) if cls is not adapters.KNNBaseline else cls(seed=3)
    adapter.fit(train)
    native = adapter.make_algo().fit(native_trainset)
    users, items = split["users"], split["items"]
    expected = [native.predict(int(u), int(i)).est for u, i in zip(users, items, strict=True)]
    np.testing.assert_allclose(adapter.predict(users, items), expected, atol=TOLERANCE)


def test_normal_predictor_is_seeded_clipped_and_batch_independent(split):
    train = split["train"]
    adapter = adapters.NormalPredictor(seed=7).fit(train)
    everyone = np.arange(split["n_users"])
    scores = adapter.score(everyone)
    assert scores.min() >= 1.0 and scores.max() <= 5.0
    np.testing.assert_array_equal(adapter.score(everyone[10:20]), scores[10:20])
    users, items = split["users"], split["items"]
    np.testing.assert_array_equal(adapter.predict(users, items), scores[users, items])
    same_seed = adapters.NormalPredictor(seed=7).fit(train).score(everyone)
    np.testing.assert_array_equal(same_seed, scores)
    other_seed = adapters.NormalPredictor(seed=8).fit(train).score(everyone)
    assert not np.array_equal(other_seed, scores)
    # unclipped draws follow N(mu, sigma) with Surprise's fitted mu and sigma
    raw = adapters.NormalPredictor(seed=7, clip=False).fit(train).score(everyone)
    assert raw.mean() == pytest.approx(adapter.algo_.trainset.global_mean, abs=0.01)
    assert raw.std() == pytest.approx(adapter.algo_.sigma, rel=0.01)


def test_codes_outside_the_catalogue_get_the_fallback_not_an_error(split):
    adapter = adapters.KNNWithMeans().fit(split["train"])
    mu = adapter.algo_.trainset.global_mean
    out = adapter.predict(np.array([-1, 10_000, 0]), np.array([0, 0, 99_999]))
    np.testing.assert_allclose(out, mu, atol=TOLERANCE)


SURPRISE_ADAPTERS = [
    c
    for c in vars(adapters).values()
    if isinstance(c, type) and issubclass(c, adapters.SurpriseAdapter) and c.name
]


@pytest.mark.parametrize("cls", SURPRISE_ADAPTERS, ids=[c.name for c in SURPRISE_ADAPTERS])
def test_params_round_trip_and_are_json_scalars(cls):
    params = cls().get_params()
    assert params == cls.default_params()
    assert json.loads(json.dumps(params)) == params
    assert cls(**params).get_params() == params
    assert params["seed"] == 0 and params["threads"] == 1
    assert set(cls.search_space) <= set(params)
    assert cls.library == "scikit-surprise" and cls.predicts_ratings


def test_default_options_are_surprises_defaults():
    """Keyword defaults are compared with Surprise's signatures in test_adapter_contract;
    these are the option dicts Surprise documents but does not declare in a signature."""
    knn = adapters.KNNBaseline().make_algo()
    assert knn.sim_options == {"name": "msd", "user_based": True, "min_support": 1}
    assert knn.bsl_options == {"method": "als", "reg_u": 15.0, "reg_i": 10.0}
    assert adapters.SVDpp().make_algo().cache_ratings is False


def test_all_eleven_algorithms_are_registered():
    expected = {
        "surprise." + n
        for n in "SVD SVDpp NMF SlopeOne KNNBasic KNNWithMeans KNNWithZScore KNNBaseline "
        "CoClustering BaselineOnly NormalPredictor".split()
    }
    assert expected <= set(available())


def test_knn_kernels_follow_heapq_nlargest_on_tied_similarities():
    """Both kernels against Surprise's rule written out in Python, with many ties."""
    rng = np.random.default_rng(4)
    n_x, n_y, k = 30, 25, 4
    sim = rng.integers(-1, 4, size=(n_x, n_x)).astype(np.float64)  # coarse: ties everywhere
    rated = rng.random((n_x, n_y)) < 0.4
    x_of, y_of = np.nonzero(rated)
    order = rng.permutation(len(x_of))  # Surprise's list order is row order, not sorted
    x_of, y_of = x_of[order], y_of[order]
    residual = rng.normal(size=len(x_of))

    def grouped(keys, others, n_keys):
        by_key = np.argsort(keys, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))])
        return indptr.astype(np.int64), others[by_key].astype(np.int32), residual[by_key]

    yr = grouped(y_of, x_of, n_y)
    xr = grouped(x_of, y_of, n_x)

    def reference(x, y):
        entries = slice(yr[0][y], yr[0][y + 1])
        listed = [(sim[x, x2], res) for x2, res in zip(yr[1][entries], yr[2][entries], strict=True)]
        chosen = [(s, res) for s, res in heapq.nlargest(k, listed, key=lambda t: t[0]) if s > 0]
        if not chosen:
            return 0.0, 0
        return sum(s * res for s, res in chosen) / sum(s for s, _ in chosen), len(chosen)

    xs = np.repeat(np.arange(n_x, dtype=np.int32), n_y)
    ys = np.tile(np.arange(n_y, dtype=np.int32), n_x)
    expected = np.array([reference(x, y) for x, y in zip(xs, ys, strict=True)])
    mean, actual_k = neighbours.knn_aggregate(xs, ys, sim, *yr, k, 3)
    np.testing.assert_allclose(mean, expected[:, 0], atol=1e-12)
    np.testing.assert_array_equal(actual_k, expected[:, 1])
    mean, actual_k = neighbours.knn_scatter(np.unique(xs), np.arange(n_y), n_y, sim, *xr, *yr, k)
    np.testing.assert_allclose(mean.ravel(), expected[:, 0], atol=1e-12)
    np.testing.assert_array_equal(actual_k.ravel(), expected[:, 1])


def test_kth_largest_matches_sorting():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 50))
        k = int(rng.integers(1, n + 1))
        values = rng.integers(0, 4, n).astype(np.float64)
        assert neighbours.kth_largest(values.copy(), n, k) == np.sort(values)[::-1][k - 1]
