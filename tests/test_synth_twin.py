"""The synthetic twin (``synthetic:like=DATASET,scale=S``, bench.data.synthetic.twin) of ML-100k:
it keeps the shape of the user-activity and item-popularity distributions within stated
tolerances, at scale 1 and scaled up, is deterministic for a seed at any thread count, and
works from a user's CSV."""

from __future__ import annotations

import numpy as np
import pytest
from test_synth_latent import fingerprint_in_child

from bench.data import datasets
from bench.data.characteristics import gini
from bench.errors import UserError

PERCENTILES = [10, 25, 50, 75, 90, 99]
#: |log((twin quantile + 1) / (source quantile + 1))| allowed at each percentile above
LOG_TOLERANCE = 0.25
GINI_TOLERANCE = 0.04


@pytest.fixture(scope="module")
def twin1():
    return datasets.load("synthetic:like=ml-100k,scale=1,seed=0")


def log_quantile_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.log((np.percentile(a, PERCENTILES) + 1) / (np.percentile(b, PERCENTILES) + 1)))


def test_twin_keeps_the_degree_distributions(ml100k, twin1) -> None:
    real, syn = ml100k.ratings, twin1.ratings
    assert (twin1.n_users, twin1.n_items) == (943, 1682)
    assert abs(len(syn) - len(real)) <= 0.01 * len(real)
    assert log_quantile_gap(syn.user_counts(), real.user_counts()).max() <= LOG_TOLERANCE
    assert log_quantile_gap(syn.item_counts(), real.item_counts()).max() <= LOG_TOLERANCE
    assert abs(gini(syn.item_counts()) - gini(real.item_counts())) <= GINI_TOLERANCE
    assert abs(gini(syn.user_counts()) - gini(real.user_counts())) <= GINI_TOLERANCE
    assert syn.user_counts().min() >= real.user_counts().min()  # ML's 20-ratings floor kept
    # the rating levels and their shares are the source's
    for level in range(1, 6):
        assert abs((syn.ratings == level).mean() - (real.ratings == level).mean()) < 0.01
    assert twin1.item_features.names == ml100k.item_features.names  # genres of the parents
    assert np.all(np.diff(syn.pair_keys()) > 0)


def test_scaled_twin_keeps_them(ml100k) -> None:
    """scale=4: four times the users over the same catalogue; ratings per user keep their
    distribution, ratings per item theirs times 4."""
    big = datasets.load("synthetic:like=ml-100k,scale=4,seed=0")
    real = ml100k.ratings
    assert (big.n_users, big.n_items) == (4 * 943, 1682)
    assert abs(len(big.ratings) - 4 * len(real)) <= 0.01 * 4 * len(real)
    assert log_quantile_gap(big.ratings.user_counts(), real.user_counts()).max() <= LOG_TOLERANCE
    assert log_quantile_gap(big.ratings.item_counts() / 4, real.item_counts()).max() <= (
        LOG_TOLERANCE)
    assert abs(gini(big.ratings.item_counts()) - gini(real.item_counts())) <= GINI_TOLERANCE


def test_twin_with_a_larger_catalogue_keeps_the_counts_per_item(ml100k) -> None:
    """items= grows the catalogue: each real item's children split its draws, so with users
    and items both times 4 the ratings per item keep their distribution."""
    big = datasets.load("synthetic:like=ml-100k,users=3772,items=6728,seed=0")
    real = ml100k.ratings
    assert (big.n_users, big.n_items) == (3772, 6728)
    assert log_quantile_gap(big.ratings.item_counts(), real.item_counts()).max() <= LOG_TOLERANCE
    assert abs(gini(big.ratings.item_counts()) - gini(real.item_counts())) <= GINI_TOLERANCE
    assert big.item_features.matrix.shape == (6728, ml100k.item_features.n_features)


def test_twin_is_the_same_at_any_thread_count(twin1) -> None:
    name = "synthetic:like=ml-100k,scale=1,seed=0"
    assert fingerprint_in_child(name, 1, 1) == fingerprint_in_child(name, 2, 2)
    assert fingerprint_in_child(name, 2, 2) == twin1.fingerprint()
    assert datasets.load("synthetic:like=ml-100k,scale=1,seed=1").fingerprint() != (
        twin1.fingerprint())


def test_twin_of_a_csv_file(tmp_path, ml100k) -> None:
    r = ml100k.ratings
    keep = r.users < 300  # a user's own file: part of ML-100k, raw ids as written
    path = tmp_path / "mine.csv"
    rows = np.column_stack([r.users[keep] + 1000, r.items[keep], r.ratings[keep].astype(int)])
    path.write_text("user,item,rating\n" + "\n".join(",".join(map(str, x)) for x in rows))
    ds = datasets.load(f"synthetic:like=csv:{path},scale=2,seed=0")
    assert ds.n_users == 600 and ds.rating_scale == (1.0, 5.0)
    assert ds.ratings.timestamps is None and ds.item_features is None
    assert set(np.unique(ds.ratings.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    implicit = datasets.load(f"synthetic:like=csv:{path}?rating=none,seed=0")
    assert implicit.implicit and set(np.unique(implicit.ratings.ratings)) == {1.0}


@pytest.mark.parametrize(("spec", "expected"), [
    ("synthetic:like=ml-100k,colour=3", "unknown parameter(s) colour"),
    ("synthetic:like=ml-100k,scale=big", "scale='big' is not a number"),
    ("synthetic:like=,scale=2", "like= needs a dataset"),
    ("synthetic:like=ml-100k,scale=0", "must be > 0"),
    ("synthetic:like=no-such-data", "unknown dataset 'no-such-data'"),
])
def test_bad_twin_names(spec: str, expected: str) -> None:
    with pytest.raises(UserError) as err:
        datasets.load(spec)
    assert expected in str(err.value) and "\n" not in str(err.value)
