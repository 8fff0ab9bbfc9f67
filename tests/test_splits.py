"""Split invariants: disjoint, complete, deterministic, no leakage, stored and reused."""

import numpy as np
import pytest

from bench.data.model import Ratings
from bench.errors import UserError
from bench.splitting import splits
from bench.splitting.splits import SplitSpec


def make_ratings(n_users=60, n_items=40, n=1500, seed=1, timestamps=True):
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    return Ratings(
        (keys // n_items).astype(np.int32),
        (keys % n_items).astype(np.int32),
        rng.integers(1, 6, size=n).astype(np.float32),
        rng.integers(0, 10_000, size=n).astype(np.int64) if timestamps else None,
        n_users,
        n_items,
    )


SPECS = [
    SplitSpec("random", test_fraction=0.2),
    SplitSpec("stratified", test_fraction=0.25),
    SplitSpec("item_stratified", test_fraction=0.25),
    SplitSpec("kfold", n_folds=5),
    SplitSpec("temporal", test_fraction=0.1),
    SplitSpec("leave_last", n_last=2),
    SplitSpec("cold_users", cold_fraction=0.2, n_reveal=3),
    SplitSpec("cold_items", cold_fraction=0.2),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.method)
def test_folds_are_disjoint_complete_and_leak_free(spec):
    r = make_ratings()
    fold_of_row = splits.assign(r, spec)
    for f in spec.folds:
        fold = splits.fold_rows(fold_of_row, f)
        assert np.intersect1d(fold.train_rows, fold.test_rows).size == 0
        assert np.union1d(fold.train_rows, fold.test_rows).size == len(r)
        train_pairs = set(r.take(fold.train_rows).pair_keys())
        assert not train_pairs & set(r.take(fold.test_rows).pair_keys())
        assert len(fold.test_rows) > 0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.method)
def test_same_seed_same_split_other_seed_other_split(spec):
    r = make_ratings()
    a = splits.assign(r, spec)
    assert (a == splits.assign(r, spec)).all()
    other = SplitSpec(spec.method, spec.test_fraction, spec.n_folds, spec.n_last, seed=1)
    if spec.method not in ("temporal", "leave_last"):  # those have no randomness
        assert (a != splits.assign(r, other)).any()


def test_kfold_test_sets_partition_the_data():
    r = make_ratings(n=1003)
    a = splits.assign(r, SplitSpec("kfold", n_folds=5))
    sizes = np.bincount(a)
    assert sizes.sum() == 1003 and sizes.max() - sizes.min() <= 1 and (a >= 0).all()


def test_stratified_keeps_each_users_fraction():
    r = make_ratings()
    a = splits.assign(r, SplitSpec("stratified", test_fraction=0.25))
    counts = r.user_counts()
    test_counts = np.bincount(r.users[a == 0], minlength=r.n_users)
    expected = counts - np.round(counts * 0.75)
    assert (test_counts == expected).all()


def test_item_stratified_is_microsoft_recommenders_benchmark_split():
    # python_stratified_split(filter_by="item", ratio=0.75): per item, the i-th of n rows in
    # a random order is train when i / n <= 0.75 -> floor(0.75 n) train rows, and an item
    # with one rating has all of it in test
    import pandas as pd

    r = make_ratings(n_users=80, n_items=60, n=1200, seed=3)
    spec = SplitSpec("item_stratified", test_fraction=0.25)
    a = splits.assign(r, spec)
    counts = np.bincount(r.items, minlength=r.n_items)
    train_counts = np.bincount(r.items[a == splits.TRAIN], minlength=r.n_items)
    # their rule, written with pandas as their _do_stratification does it
    df = pd.DataFrame({"item": r.items, "random": np.arange(len(r.items))})
    df = df.sort_values(["item", "random"])
    grouped = df.groupby("item")
    share = (grouped.cumcount() + 1) / grouped["item"].transform("count")
    theirs = np.bincount(df["item"][share <= 0.75], minlength=r.n_items)
    np.testing.assert_array_equal(train_counts, theirs)
    single = np.flatnonzero(counts == 1)
    assert len(single) == 0 or (train_counts[single] == 0).all()
    assert spec.label == "item-stratified 75/25"
    assert SplitSpec("stratified", test_fraction=0.25).label == "user-stratified 75/25"
    # per item, not per user: users' test shares vary, items' do not
    user_split = splits.assign(r, SplitSpec("stratified", test_fraction=0.25))
    assert not np.array_equal(a, user_split)
    assert SplitSpec.from_dict(spec.to_dict()) == spec


def test_temporal_test_rows_are_the_latest():
    r = make_ratings()
    a = splits.assign(r, SplitSpec("temporal", test_fraction=0.1))
    assert r.timestamps[a == 0].min() >= r.timestamps[a != 0].max()


def test_leave_last_takes_each_users_latest():
    r = make_ratings()
    a = splits.assign(r, SplitSpec("leave_last", n_last=2))
    for u in range(r.n_users):
        mine = r.users == u
        test_ts = r.timestamps[mine & (a == 0)]
        train_ts = r.timestamps[mine & (a != 0)]
        if mine.sum() > 2:
            assert len(test_ts) == 2 and test_ts.min() >= train_ts.max()
        else:
            assert len(test_ts) == 0


def test_time_based_splits_need_timestamps():
    with pytest.raises(UserError, match="needs timestamps"):
        splits.assign(make_ratings(timestamps=False), SplitSpec("temporal"))


def test_validation_is_carved_from_train_only():
    r = make_ratings()
    spec = SplitSpec("stratified", test_fraction=0.25)
    fold = splits.fold_rows(splits.assign(r, spec), 0)
    val = splits.validation_rows(r, fold.train_rows, spec)
    assert np.intersect1d(val.test_rows, fold.test_rows).size == 0
    assert np.union1d(val.train_rows, val.test_rows).tolist() == sorted(fold.train_rows)


def test_stored_split_is_reused_and_repaired(tmp_path):
    r = make_ratings()
    spec = SplitSpec("random")
    a = splits.load_or_assign(r, spec, tmp_path)
    (path,) = tmp_path.glob("*.npz")
    assert (splits.load_or_assign(r, spec, tmp_path) == a).all()
    path.write_bytes(b"garbage")  # a corrupted store is recomputed, not trusted
    assert (splits.load_or_assign(r, spec, tmp_path) == a).all()


def test_bad_specs_are_user_errors():
    with pytest.raises(UserError, match="unknown split method"):
        SplitSpec("bogus")
    with pytest.raises(UserError, match="test_fraction"):
        SplitSpec("random", test_fraction=1.5)
    with pytest.raises(UserError, match="unknown split option"):
        SplitSpec.from_dict({"method": "random", "frac": 0.2})
    with pytest.raises(UserError, match="cannot be split into 5 folds"):
        splits.assign(make_ratings(n=3), SplitSpec("kfold"))


@pytest.mark.parametrize("n_reveal", [0, 1, 3, 5, 10])
def test_cold_users_appear_in_train_only_through_revealed_ratings(n_reveal):
    r = make_ratings(n_users=100, n=3000)
    spec = SplitSpec("cold_users", cold_fraction=0.2, n_reveal=n_reveal)
    a = splits.assign(r, spec)
    fold = splits.fold_rows(a, 0)
    test_users = np.unique(r.users[fold.test_rows])
    assert 10 <= len(test_users) <= 30  # about 20% of 100 users
    revealed = r.take(fold.revealed_rows)
    assert set(np.unique(revealed.users)) <= set(test_users) | set(np.flatnonzero(
        r.user_counts() <= n_reveal))
    warm_train = np.setdiff1d(fold.train_rows, fold.revealed_rows)
    assert not set(r.users[warm_train]) & set(test_users)
    for u in test_users:
        mine = r.users == u
        shown = r.timestamps[mine & (a == splits.REVEALED)]
        hidden = r.timestamps[mine & (a == 0)]
        assert len(shown) == n_reveal  # exactly n revealed: the earliest ones
        if n_reveal:
            assert shown.max() <= hidden.min()


def test_cold_items_never_appear_in_train():
    r = make_ratings()
    fold = splits.fold_rows(splits.assign(r, SplitSpec("cold_items", cold_fraction=0.2)), 0)
    cold_items = np.unique(r.items[fold.test_rows])
    assert 0 < len(cold_items) < r.n_items
    assert not set(r.items[fold.train_rows]) & set(cold_items)
    # every rating of a cold item is in test
    assert np.isin(r.items, cold_items).sum() == len(fold.test_rows)


def test_train_fraction_subsamples_train_and_keeps_test():
    r = make_ratings(n_users=100, n=3000)
    full = splits.fold_rows(splits.assign(r, SplitSpec("random")), 0)
    part = splits.fold_rows(splits.assign(r, SplitSpec("random", train_fraction=0.25)), 0)
    assert (part.test_rows == full.test_rows).all()
    assert set(part.train_rows) < set(full.train_rows)
    assert abs(len(part.train_rows) / len(full.train_rows) - 0.25) < 0.05
    assert SplitSpec("random").to_dict() == {"method": "random", "seed": 0, "test_fraction": 0.2}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_hold_out_is_not_a_fold_of_the_kfold_split(seed):
    # Both are cut from a seeded permutation; from one stream fold 0 of 5 was exactly the
    # random 80/20 test set, so the two tables were one experiment shown twice.
    r = make_ratings(n=2000)
    hold_out = splits.fold_rows(splits.assign(r, SplitSpec("random", 0.2, seed=seed)), 0)
    kfold = splits.assign(r, SplitSpec("kfold", n_folds=5, seed=seed))
    for f in range(5):
        test = splits.fold_rows(kfold, f).test_rows
        assert len(test) == len(hold_out.test_rows)
        shared = np.intersect1d(test, hold_out.test_rows).size / len(test)
        assert shared < 0.35  # about 0.2 for independent draws
