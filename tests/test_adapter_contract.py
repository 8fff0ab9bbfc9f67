"""One contract test run over every registered adapter (as implicit's RecommenderBaseTestMixin
does for its models), plus: an adapter's defaults are the wrapped library's own.

Each adapter is fitted on small seeded synthetic data (with item genres, a user and an item
without train rows), so a test takes about a second per adapter.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest

from bench.adapter import Adapter
from bench.data import synthetic
from bench.data.model import Ratings, TrainSet
from bench.execution import registry

#: built-in adapters only (plugins from RECBENCH_ADAPTERS_PATH are the tests' fault injectors)
ADAPTERS = sorted(
    name
    for name, info in registry.discover().items()
    if info.cls is not None and info.module.startswith("recbench_adapters.")
)

COLD_USER, COLD_ITEM = 0, 0


def read_only(array: np.ndarray) -> np.ndarray:
    """Trials hand adapters their rows mapped read-only from the data store
    (``bench.execution.datastore.fold_ratings``): an adapter must never write into them."""
    array = np.array(array)
    array.setflags(write=False)
    return array


@cache
def train_set() -> TrainSet:
    """100 users x 80 items, 2000 seeded ratings with genres; user 0 and item 0 left cold;
    the rating columns read-only, as a trial gets them from the data store."""
    data = synthetic.generate(100, 80, 2000, seed=3)
    r = data.ratings.take((data.ratings.users != COLD_USER) & (data.ratings.items != COLD_ITEM))
    return TrainSet(
        Ratings(read_only(r.users), read_only(r.items), read_only(r.ratings),
                None if r.timestamps is None else read_only(r.timestamps), r.n_users, r.n_items),
        data.rating_scale,
        item_features=data.item_features,
        user_features=data.user_features,
    )


@cache
def fitted(name: str, seed: int = 0) -> Adapter:
    model = registry.get(name)(seed=seed, threads=1)
    assert model.fit(train_set()) is model, "fit must return self"
    return model


USERS = read_only(np.arange(10, dtype=np.int32))  # includes the cold user 0


@pytest.mark.parametrize("name", ADAPTERS)
def test_parameters_are_init_keywords_stored_as_attributes(name: str) -> None:
    cls = registry.get(name)
    assert cls.name == name
    signature = inspect.signature(cls.__init__)
    for p in list(signature.parameters.values())[1:]:
        assert p.kind is p.POSITIONAL_OR_KEYWORD, f"{p.name}: no *args / **kwargs"
        assert p.default is not p.empty, f"{p.name} needs a default"
    params = cls().get_params()
    assert params == cls.default_params()
    assert params["seed"] == 0 and params["threads"] == 1
    assert json.loads(json.dumps(params)) == params  # records store them as JSON
    assert cls(**params).get_params() == params
    changed = cls(seed=7, threads=2)
    assert (changed.seed, changed.threads) == (7, 2)
    if cls.preset_of:  # a preset has its base's parameters, with other defaults
        assert list(params) == registry.get(cls.preset_of).param_names()


@pytest.mark.parametrize("name", ADAPTERS)
def test_search_space_names_real_parameters(name: str) -> None:
    """The tune step builds adapters from these: every value must be accepted as given."""
    cls = registry.get(name)
    defaults = cls.default_params()
    for param, values in cls.search_space.items():
        assert param in defaults and param not in ("seed", "threads")
        assert values
        for value in values:
            assert type(value) is type(defaults[param])  # 1 is not 1.0 to the type check
            assert getattr(cls(**{param: value}), param) == value


@pytest.mark.parametrize("name", ADAPTERS)
def test_scores_and_predictions_have_the_contract_shape(name: str) -> None:
    model = fitted(name)
    cls = type(model)
    train = train_set()
    assert cls.predicts_ratings or cls.ranks
    json.dumps(model.fitted_info())
    scores = model.score(USERS)
    assert scores.shape == (len(USERS), train.n_items) and scores.dtype == np.float32
    assert not np.isnan(scores).any()
    factors = model.factor_scores(USERS)
    if factors is not None:  # the same scores as factors, bit for bit
        block = factors.block()
        rows = ~np.asarray(factors.score_rows) if factors.score_rows is not None else slice(None)
        np.testing.assert_array_equal(block[rows], scores[rows])
    if cls.predicts_ratings:
        users = read_only(np.repeat(USERS, 3))
        items = read_only(np.tile(np.array([COLD_ITEM, 5, 17], dtype=np.int32), len(USERS)))
        estimates = model.predict(users, items)
        assert estimates.shape == (len(users),) and estimates.dtype == np.float32
        assert np.isfinite(estimates).all()
        # score is the rating estimate of every item
        np.testing.assert_allclose(scores[np.repeat(np.arange(len(USERS)), 3), items], estimates,
                                   rtol=1e-5, atol=1e-4)
    else:
        with pytest.raises(NotImplementedError):
            model.predict(USERS, USERS)


#: a Spark fit starts a JVM (~20 s): the repeat fit runs for spark.ALS only, whose session,
#: seed and factor hand-off spark.ImplicitALS shares (it differs in implicitPrefs / alpha)
REPEAT_FIT = [n for n in ADAPTERS if n != "spark.ImplicitALS"]


@pytest.mark.parametrize("name", REPEAT_FIT)
def test_one_thread_and_a_fixed_seed_give_the_same_scores(name: str) -> None:
    """Records say ``reproducible`` at one thread for every adapter: fit twice, compare."""
    again = registry.get(name)(seed=0, threads=1).fit(train_set())
    np.testing.assert_array_equal(again.score(USERS), fitted(name).score(USERS))
    if not registry.get(name).stochastic:  # run once per suite: the seed must not matter
        np.testing.assert_allclose(
            fitted(name, seed=1).score(USERS), fitted(name).score(USERS), rtol=1e-4, atol=1e-5
        )


# -- defaults are the wrapped library's own ------------------------------------------------


def _library_signatures() -> dict[str, list[Callable[..., Any]]]:
    """Adapter -> the library callables whose keyword arguments it mirrors (same names)."""
    mirrors: dict[str, list[Callable[..., Any]]] = {}
    if "surprise.SVD" in ADAPTERS:
        import surprise

        mirrors |= {
            "surprise.SVD": [surprise.SVD],
            "surprise.SVDpp": [surprise.SVDpp],
            "surprise.NMF": [surprise.NMF],
            "surprise.CoClustering": [surprise.CoClustering],
            "surprise.KNNBasic": [surprise.KNNBasic],
            "surprise.KNNWithMeans": [surprise.KNNWithMeans],
            "surprise.KNNWithZScore": [surprise.KNNWithZScore],
            "surprise.KNNBaseline": [surprise.KNNBaseline],
        }
    if "implicit.ALS" in ADAPTERS:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.cpu.lmf import LogisticMatrixFactorization
        from implicit.nearest_neighbours import (
            BM25Recommender,
            CosineRecommender,
            TFIDFRecommender,
        )

        mirrors |= {
            "implicit.ALS": [AlternatingLeastSquares],
            "implicit.BPR": [BayesianPersonalizedRanking],
            "implicit.LMF": [LogisticMatrixFactorization],
            "implicit.CosineKNN": [CosineRecommender],
            "implicit.TFIDFKNN": [TFIDFRecommender],
            "implicit.BM25KNN": [BM25Recommender],
        }
    if "lightfm.WARP" in ADAPTERS:
        from lightfm import LightFM

        for name in ADAPTERS:
            if name.startswith("lightfm."):
                mirrors[name] = [LightFM, LightFM.fit]
    if "scipy.PureSVD" in ADAPTERS:
        from scipy.sparse.linalg import svds

        mirrors |= {"scipy.PureSVD": [svds], "scipy.SVD": [svds]}
    return mirrors


#: Where recbench chose its own default for a parameter the library also has, and why.
DELIBERATE: dict[tuple[str, str], str] = {
    **{
        (name, "epochs"): "LightFM.fit trains 1 epoch by default; 30 is its quickstart's count"
        for name in ADAPTERS
        if name.startswith("lightfm.")
    },
}

#: Adapter parameters named differently from the library's: (adapter, param) -> library name
RENAMED: dict[tuple[str, str], str] = {
    ("scipy.PureSVD", "rank"): "k",
    ("scipy.SVD", "rank"): "k",
}
DELIBERATE |= {
    ("scipy.PureSVD", "rank"): "svds' k=6 is a placeholder; 50 is a PureSVD rank of Cremonesi "
    "et al.'s range, chosen like the other defaults on synthetic data",
    ("scipy.SVD", "rank"): "svds' k=6 is a placeholder; a rating model wants a low rank (10)",
}


def _mirrored(name: str) -> dict[str, tuple[Any, Any]]:
    """param -> (adapter default, library default) for every mirrored parameter."""
    defaults = registry.get(name).default_params()
    pairs: dict[str, tuple[Any, Any]] = {}
    for target in _library_signatures()[name]:
        library = inspect.signature(target).parameters
        for param, value in defaults.items():
            if param in ("seed", "threads"):
                continue
            library_name = RENAMED.get((name, param), param)
            if library_name in library and library[library_name].default is not inspect._empty:
                pairs[param] = (value, library[library_name].default)
    return pairs


@pytest.mark.parametrize("name", sorted(_library_signatures()))
def test_defaults_are_the_wrapped_librarys_own(name: str) -> None:
    pairs = _mirrored(name)
    assert pairs, f"{name} mirrors no parameter of its library: fix the mirror table"
    differ = {p: pair for p, pair in pairs.items() if pair[0] != pair[1]}
    unexplained = {p: pair for p, pair in differ.items() if (name, p) not in DELIBERATE}
    assert not unexplained, f"{name}: (ours, library's) defaults differ: {unexplained}"
    stale = {p for (n, p) in DELIBERATE if n == name and p not in differ}
    assert not stale, f"{name}: listed as deliberate but equal to the library's now: {stale}"
    # what the leaderboard says of the row ("library defaults but recbench's ...") is true
    cls = registry.get(name)
    if cls.defaults_by == "library":
        undeclared = set(differ) - set(cls.recbench_defaults)
        assert not undeclared, f"{name}: recbench_defaults misses {sorted(undeclared)}"
