"""Reference protocols shared by tests, written apart from the harness's own splits."""

from __future__ import annotations

import numpy as np

from bench.data import Ratings


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
