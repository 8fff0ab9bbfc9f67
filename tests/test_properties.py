"""Property-based tests: random inputs never crash, metrics stay in range, splits keep
their invariants."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.data.model import Ratings
from bench.evaluation import metrics
from bench.evaluation.ranking import NO_ITEM, exclude, top_k
from bench.splitting import splits

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def ratings(draw, min_rows=1):
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 12))
    cells = n_users * n_items
    n = draw(st.integers(min(min_rows, cells), min(cells, 60)))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    keys = rng.choice(cells, size=n, replace=False)
    return Ratings(
        (keys // n_items).astype(np.int32),
        (keys % n_items).astype(np.int32),
        rng.integers(1, 6, size=n).astype(np.float32),
        rng.integers(0, 1000, size=n).astype(np.int64),
        n_users,
        n_items,
    )


@st.composite
def split_specs(draw):
    method = draw(st.sampled_from(splits.METHODS))
    return splits.SplitSpec(
        method,
        test_fraction=draw(st.floats(0.05, 0.95)),
        n_folds=draw(st.integers(2, 5)),
        n_last=draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 1000)),
        cold_fraction=draw(st.floats(0.05, 0.95)),
        n_reveal=draw(st.integers(0, 4)),
    )


@SETTINGS
@given(ratings(min_rows=5), split_specs())
def test_splits_partition_rows_without_leakage(r, spec):
    if spec.method == "kfold" and len(r) < spec.n_folds:
        return  # rejected with a UserError, tested elsewhere
    fold_of_row = splits.assign(r, spec)
    assert (fold_of_row == splits.assign(r, spec)).all()  # deterministic
    for f in spec.folds:
        fold = splits.fold_rows(fold_of_row, f)
        assert np.intersect1d(fold.train_rows, fold.test_rows).size == 0
        assert len(fold.train_rows) + len(fold.test_rows) == len(r)
        assert not set(r.take(fold.train_rows).pair_keys()) & set(
            r.take(fold.test_rows).pair_keys())
        assert set(fold.revealed_rows) <= set(fold.train_rows)


@SETTINGS
@given(
    st.integers(1, 8),
    st.integers(1, 30),
    st.integers(1, 12),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_ranking_metrics_stay_in_range(n_users, n_items, k, seed, ties):
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, 3, (n_users, n_items)) if ties
              else rng.random((n_users, n_items))).astype(np.float32)
    seen = rng.random((n_users, n_items)) < 0.3
    import scipy.sparse as sp

    users = np.arange(n_users, dtype=np.int32)
    top = top_k(exclude(scores, users, sp.csr_matrix(seen.astype(np.float32))), k)
    assert top.shape == (n_users, min(k, n_items))
    for row, s in zip(top, seen, strict=True):
        real = row[row != NO_ITEM]
        assert len(set(real)) == len(real) and not s[real].any()  # no train item, no repeat
        assert len(real) == min(len(row), int((~s).sum()))
    relevant = rng.random((n_users, n_items)) < 0.3
    relevant &= ~seen
    keys = np.flatnonzero(relevant.ravel()).astype(np.int64)
    has = relevant.any(axis=1)
    if not has.any():
        return
    hits = metrics.hits_matrix(top[has], users[has], keys, n_items)
    n_rel = relevant.sum(axis=1)[has]
    for name, values in metrics.ranking_metrics(hits, n_rel, top.shape[1]).items():
        assert np.all((values >= 0) & (values <= 1 + 1e-9)), name
    assert 0 <= metrics.coverage(top, n_items) <= 1


@SETTINGS
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=50), st.floats(-5, 5))
def test_rating_metrics_are_consistent(values, shift):
    truth = np.array(values)
    est = truth + shift
    assert metrics.rmse(est, truth) >= metrics.mae(est, truth) - 1e-9
    assert abs(metrics.mae(est, truth) - abs(shift)) < 1e-6
