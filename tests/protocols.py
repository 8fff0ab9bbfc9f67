"""Reference protocols shared by tests, written apart from the harness's own splits."""

from __future__ import annotations

import numpy as np

from bench.data.model import Ratings


def per_user_split(ratings: Ratings, share: float = 0.75) -> tuple[Ratings, Ratings]:
    """Per-user stratified split (Microsoft Recommenders' python_stratified_split by user):
    a seeded shuffle of each user's rows, the first ``share`` in train."""
    key = np.random.default_rng(0).random(len(ratings))
    order = np.lexsort((key, ratings.users))
    counts = ratings.user_counts()
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    position = np.arange(len(ratings)) - starts
    in_train = np.zeros(len(ratings), dtype=bool)
    in_train[order] = position < np.repeat(np.round(counts * share), counts)
    return ratings.take(np.flatnonzero(in_train)), ratings.take(np.flatnonzero(~in_train))


def cold_holdout(ratings: Ratings, seed: int, n_cold_users: int, n_cold_items: int,
                 test_share: float = 0.2):
    """Test-row mask: a random ``test_share`` of the rows plus every row of a random
    ``n_cold_users`` users and ``n_cold_items`` items, which so have no train rows.
    Returns (mask, cold users, cold items, the generator for further draws)."""
    rng = np.random.default_rng(seed)
    cold_users = rng.choice(ratings.n_users, n_cold_users, replace=False)
    cold_items = rng.choice(ratings.n_items, n_cold_items, replace=False)
    cold = np.isin(ratings.users, cold_users) | np.isin(ratings.items, cold_items)
    return (rng.random(len(ratings)) < test_share) | cold, cold_users, cold_items, rng
