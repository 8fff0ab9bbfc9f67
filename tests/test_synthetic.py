"""The popularity-only synthetic generator (``synthetic-popularity:``,
bench.data.synthetic.popularity):
determinism, valid rows, realistic skew, speed; and the ``synthetic:`` names' errors."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data import datasets
from bench.data.synthetic import generate
from bench.errors import UserError

SMALL = dict(n_users=1000, n_items=500, n_ratings=20_000)


@pytest.fixture(scope="module")
def small():
    return generate(**SMALL, seed=0)


def test_same_seed_same_data_other_seed_other_data(small) -> None:
    again = generate(**SMALL, seed=0)
    assert again.fingerprint() == small.fingerprint()
    assert (again.item_features.matrix != small.item_features.matrix).nnz == 0
    assert generate(**SMALL, seed=1).fingerprint() != small.fingerprint()


def test_result_does_not_depend_on_threads(small) -> None:
    assert generate(**SMALL, seed=0, threads=2).fingerprint() == small.fingerprint()


def test_rows_are_valid_and_unique(small) -> None:
    r = small.ratings
    assert (small.n_users, small.n_items, len(r)) == (1000, 500, 20_000)
    assert r.users.dtype == np.int32 and r.items.dtype == np.int32
    assert r.ratings.dtype == np.float32 and r.timestamps.dtype == np.int64
    keys = r.pair_keys()
    assert np.all(np.diff(keys) > 0)  # unique pairs, sorted by (user, item) like loaded data
    assert set(np.unique(r.ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert small.rating_scale == (1.0, 5.0)
    assert 3.3 < r.ratings.mean() < 3.7  # MovieLens-like mean
    assert r.user_counts().min() >= 1
    assert r.timestamps.min() >= 946_684_800  # inside the 2000-2020 window
    assert r.timestamps.max() <= 946_684_800 + 20 * 365 * 86_400


def test_popularity_and_activity_are_heavy_tailed(small) -> None:
    items = np.sort(small.ratings.item_counts())[::-1]
    assert items[: len(items) // 10].sum() > 0.4 * items.sum()  # top 10% items: >40% of rows
    users = small.ratings.user_counts()
    assert users.max() > 5 * np.median(users)


def test_ratings_carry_signal_from_user_and_item_effects(small) -> None:
    """Item means differ far more than noise alone would make them (biases and factors)."""
    r = small.ratings
    counts = r.item_counts()
    means = np.bincount(r.items, weights=r.ratings, minlength=small.n_items) / np.maximum(counts, 1)
    busy = counts >= 50
    assert means[busy].std() > 0.25


def test_genre_side_features(small) -> None:
    f = small.item_features
    assert f.matrix.shape == (500, 18) and f.names[0] == "genre=G00"
    per_item = np.asarray(f.matrix.sum(axis=1)).ravel()
    assert per_item.min() >= 1 and per_item.max() <= 3


def test_small_generation_is_repeatable(small) -> None:
    # (its speed is a benchmark's business, not a wall-time assertion)
    a, b = generate(**SMALL, seed=3), generate(**SMALL, seed=3)
    assert np.array_equal(a.ratings.users, b.ratings.users)
    assert np.array_equal(a.ratings.ratings, b.ratings.ratings)


def test_load_by_name() -> None:
    name = "synthetic-popularity:users=300,items=200,ratings=5000,seed=4,n_factors=4"
    ds = datasets.load(name)
    assert (ds.n_users, ds.n_items, len(ds.ratings)) == (300, 200, 5000)
    assert ds.meta["params"]["seed"] == 4 and ds.meta["params"]["n_factors"] == 4
    assert ds.name == name
    assert ds.fingerprint() == generate(300, 200, 5000, seed=4, n_factors=4).fingerprint()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("synthetic:users=10,items=5", "missing ratings"),
        ("synthetic:users=10,items=5,ratings=20,colour=3", "unknown parameter(s) colour"),
        ("synthetic:users=10,items=5,ratings=many", "ratings='many' is not a number"),
        ("synthetic:users=10,items=4,ratings=30", "do not fit 10 users x 2 items"),
    ],
)
def test_bad_synthetic_names(spec: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        datasets.load(spec)
    assert expected in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_ml32m_shape_in_bounded_memory() -> None:
    """ML-32M shape: 32M ratings, 200,948 users, 84,432 items (about 25 s on one core)."""
    import resource

    ds = generate(200_948, 84_432, 32_000_204, seed=0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(ds.ratings) == 32_000_204 and ds.ratings.user_counts().min() >= 1
    assert peak_mb < 4096


def test_large_synthetic_data_is_cached_and_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "SYNTHETIC_CACHE_MIN_RATINGS", 1000)
    name = "synthetic:users=200,items=100,ratings=3000,seed=4"
    first = datasets.load(name)
    assert first.meta["loaded_from_cache"] is False
    second = datasets.load(name)
    assert second.meta["loaded_from_cache"] is True
    assert second.fingerprint() == first.fingerprint()
    np.testing.assert_array_equal(second.item_features.matrix.toarray(),
                                  first.item_features.matrix.toarray())
    small = datasets.load("synthetic:users=20,items=10,ratings=100,seed=4")
    assert "loaded_from_cache" not in small.meta  # small data is generated every time
    path = datasets.source_for(name).cache_path
    path.write_bytes(path.read_bytes()[:-100])  # damaged: regenerated, same content
    assert datasets.load(name).fingerprint() == first.fingerprint()
