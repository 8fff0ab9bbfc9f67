"""The one policy turning explicit ratings into implicit feedback, shared by ranking models."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.adapter import LearnsFromInteractions
from bench.data.feedback import FeedbackPolicy
from bench.data.model import Ratings, TrainSet
from bench.errors import UserError
from bench.execution import registry


def small_ratings() -> Ratings:
    # user 0 rates items 0,1,2 with 5,3,4; user 2 rates item 1 with 2; user 1 and item 3 are
    # in the catalogue without ratings.
    return Ratings(
        users=np.array([0, 0, 0, 2], dtype=np.int32),
        items=np.array([0, 1, 2, 1], dtype=np.int32),
        ratings=np.array([5, 3, 4, 2], dtype=np.float32),
        timestamps=None,
        n_users=3,
        n_items=4,
    )


def test_default_policy_makes_every_rated_item_an_interaction_of_value_one() -> None:
    m = small_ratings().interactions()
    assert isinstance(m, sp.csr_matrix) and m.dtype == np.float32
    assert m.shape == (3, 4)  # the whole catalogue, including unrated users and items
    expected = np.array([[1, 1, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(m.toarray(), expected)


def test_threshold_policy_keeps_only_ratings_at_or_above_the_threshold() -> None:
    m = small_ratings().interactions(FeedbackPolicy("threshold", threshold=4.0))
    expected = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(m.toarray(), expected)


def test_confidence_policy_weights_by_one_plus_alpha_times_rating() -> None:
    m = small_ratings().interactions(FeedbackPolicy("confidence", alpha=0.5))
    expected = np.array([[3.5, 2.5, 3.0, 0], [0, 0, 0, 0], [0, 2.0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(m.toarray(), expected)


def test_a_pair_rated_twice_counts_once() -> None:
    r = small_ratings()
    doubled = Ratings(
        np.concatenate([r.users, [0]]).astype(np.int32),
        np.concatenate([r.items, [1]]).astype(np.int32),
        np.concatenate([r.ratings, [1.0]]).astype(np.float32),
        None,
        r.n_users,
        r.n_items,
    )
    assert doubled.interactions()[0, 1] == 1.0
    # the highest rating of the pair sets its confidence
    assert doubled.interactions(FeedbackPolicy("confidence", alpha=1.0))[0, 1] == 4.0


def test_unknown_policy_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown feedback policy"):
        FeedbackPolicy("likes")
    with pytest.raises(UserError, match="unknown feedback policy"):
        registry.get("scipy.PureSVD")(feedback="likes")  # fails when built, not when fitted


#: every registered adapter that learns from interactions (Spark's JVM left out for speed:
#: its ``prepare`` writes the same interactions to Parquet, tests/test_spark.py covers it)
RANKING_ONLY = [
    cls for cls in map(registry.get, registry.available())
    if issubclass(cls, LearnsFromInteractions) and cls.library != "pyspark"
]


@pytest.mark.parametrize("adapter_cls", RANKING_ONLY, ids=lambda c: c.name)
def test_every_ranking_only_adapter_learns_from_the_shared_policy(adapter_cls: type) -> None:
    train = TrainSet(small_ratings(), (1.0, 5.0))
    model = adapter_cls(feedback="threshold", feedback_threshold=4.0)
    prepared = model.bind(train)
    if isinstance(prepared, tuple):  # recbench.ImplicitALS: (user x item CSR, its index)
        prepared = prepared[0]
    interactions = getattr(prepared, "interactions", prepared)  # LightFM wraps it
    expected = train.ratings.interactions(FeedbackPolicy("threshold", threshold=4.0))
    np.testing.assert_array_equal(sp.csr_matrix(interactions).toarray(), expected.toarray())
