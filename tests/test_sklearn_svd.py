"""sklearn.TruncatedSVD scores like scipy.PureSVD: same top-K where the rank-k SVD is clear."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_adapters.scipy import PureSVD
from recbench_adapters.sklearn import TruncatedSVD

from bench.data.model import Ratings, TrainSet
from bench.errors import UserError
from bench.evaluation.ranking import recommend


def low_rank(n_users: int = 300, n_items: int = 120, rank: int = 6) -> TrainSet:
    """Users copy one of ``rank`` item-set patterns, with 3% of cells flipped: a clear
    spectral gap after ``rank`` singular values.  The last user has no rows."""
    rng = np.random.default_rng(11)
    patterns = rng.random((rank, n_items)) < 0.3
    rows = patterns[rng.integers(0, rank, n_users)] ^ (rng.random((n_users, n_items)) < 0.03)
    rows[-1] = False
    users, items = np.nonzero(rows)
    r = Ratings(users.astype(np.int32), items.astype(np.int32),
                np.full(len(users), 4.0, np.float32), None, n_users, n_items)  # fmt: skip
    return TrainSet(r, (1.0, 5.0))


def test_same_scores_and_top_k_as_puresvd_at_equal_factors() -> None:
    train = low_rank()
    svd = TruncatedSVD(n_components=6).fit(train)
    pure = PureSVD(rank=6).fit(train)
    users = np.arange(train.n_users - 1, dtype=np.int32)
    np.testing.assert_allclose(svd.score(users), pure.score(users), atol=2e-3)
    seen = train.ratings.to_csr()
    ours = recommend(svd.score, users, seen, 10, factors=svd.factor_scores)
    theirs = recommend(pure.score, users, seen, 10, factors=pure.factor_scores)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ours, theirs, strict=True)])
    assert overlap > 0.95


def test_factor_path_ranks_like_the_score_block_and_cold_users_get_popularity() -> None:
    train = low_rank()
    model = TruncatedSVD(n_components=6, seed=3).fit(train)
    users = np.arange(train.n_users, dtype=np.int32)
    seen = train.ratings.to_csr()
    fused = recommend(model.score, users, seen, 10, factors=model.factor_scores)
    np.testing.assert_array_equal(fused, recommend(model.score, users, seen, 10))
    np.testing.assert_array_equal(model.score(users[-1:])[0], train.ratings.item_counts())


def test_seed_is_the_random_state() -> None:
    train = low_rank()
    users = np.arange(train.n_users, dtype=np.int32)
    a = TruncatedSVD(n_components=20, n_iter=1, seed=0).fit(train).score(users)
    b = TruncatedSVD(n_components=20, n_iter=1, seed=0).fit(train).score(users)
    c = TruncatedSVD(n_components=20, n_iter=1, seed=1).fit(train).score(users)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # an unconverged randomized SVD depends on its seed


def test_too_many_components_is_a_user_error() -> None:
    with pytest.raises(UserError, match="n_components must be between"):
        TruncatedSVD(n_components=120).fit(low_rank())
