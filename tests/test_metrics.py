"""Metric values against hand-computed cases, and top-K selection rules."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from bench.evaluation import metrics
from bench.evaluation.ranking import NO_ITEM, exclude, tie_order, top_k, top_k_by_position

N_ITEMS = 5
# user 0: relevant {1, 3}, list [3, 0, 1, 4, 2] -> hits at ranks 1 and 3
# user 1: relevant {2},    list [0, 1, 3, 4, 2] -> hit at rank 5
TOP = np.array([[3, 0, 1, 4, 2], [0, 1, 3, 4, 2]])
USERS = np.array([0, 1])
KEYS = np.array([0 * N_ITEMS + 1, 0 * N_ITEMS + 3, 1 * N_ITEMS + 2])
N_REL = np.array([2, 1])


def per_user(k):
    hits = metrics.hits_matrix(TOP, USERS, KEYS, N_ITEMS)
    return metrics.ranking_metrics(hits, N_REL, k)


def test_hits_matrix():
    hits = metrics.hits_matrix(TOP, USERS, KEYS, N_ITEMS)
    assert hits.tolist() == [[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]]


def test_ranking_metrics_at_5_hand_computed():
    m = per_user(5)
    assert m["precision"] == pytest.approx([2 / 5, 1 / 5])
    assert m["recall"] == pytest.approx([1.0, 1.0])
    idcg0 = 1 + 1 / math.log2(3)
    assert m["ndcg"] == pytest.approx([(1 + 1 / math.log2(4)) / idcg0, 1 / math.log2(6)])
    assert m["map"] == pytest.approx([(1 + 2 / 3) / 2, 1 / 5])
    assert m["hit_rate"] == pytest.approx([1, 1])
    assert m["mrr"] == pytest.approx([1, 1 / 5])


def test_ranking_metrics_at_1_and_3():
    m1 = per_user(1)
    assert m1["precision"] == pytest.approx([1, 0])
    assert m1["recall"] == pytest.approx([0.5, 0])
    assert m1["ndcg"] == pytest.approx([1, 0])
    assert m1["map"] == pytest.approx([1, 0])
    m3 = per_user(3)
    assert m3["hit_rate"] == pytest.approx([1, 0])
    assert m3["mrr"] == pytest.approx([1, 0])
    # AP@3 of user 0 divides by min(n_rel, K) = 2.
    assert m3["map"] == pytest.approx([(1 + 2 / 3) / 2, 0])


def test_padding_is_never_a_hit():
    top = np.array([[1, NO_ITEM, NO_ITEM]])
    hits = metrics.hits_matrix(top, np.array([0]), np.array([1]), N_ITEMS)
    assert hits.tolist() == [[True, False, False]]


def test_rating_metrics():
    est = np.array([3.0, 4.0, 5.0])
    truth = np.array([4.0, 4.0, 3.0])
    assert metrics.rmse(est, truth) == pytest.approx(math.sqrt(5 / 3))
    assert metrics.mae(est, truth) == pytest.approx(1.0)


def test_coverage():
    assert metrics.coverage(TOP[:, :2], N_ITEMS) == pytest.approx(3 / 5)


def test_intervals():
    mean, half = metrics.mean_interval(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0
    assert half == pytest.approx(1.959964 * 1.0 / math.sqrt(3))
    mean, half = metrics.t_interval(np.array([1.0, 2.0, 3.0]))
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)


def test_top_k_by_position_breaks_ties_by_column():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5]], dtype=np.float32)
    assert top_k_by_position(scores, 4).tolist() == [[1, 3, 0, 2]]
    assert top_k_by_position(scores, 1).tolist() == [[1]]


def test_top_k_breaks_ties_in_the_fixed_tie_order():
    n = 50
    order = tie_order(n)
    assert sorted(order) == list(range(n)) and not (order == np.arange(n)).all()
    flat = np.zeros((2, n), dtype=np.float32)  # every item tied
    assert top_k(flat, 5).tolist() == [order[:5].tolist()] * 2
    scores = flat.copy()
    scores[:, 7] = 1.0  # a strictly better item still comes first
    assert top_k(scores, 3)[0].tolist() == [7, *[i for i in order if i != 7][:2]]


def test_top_k_does_not_depend_on_batching():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 30)).astype(np.float32)  # many ties
    whole = top_k(scores.copy(), 7)
    parts = np.concatenate([top_k(scores[i : i + 7].copy(), 7) for i in range(0, 50, 7)])
    assert (whole == parts).all()
    # Same as a stable sort by (-score, position in the tie order).
    order = tie_order(30)
    ref = order[np.argsort(-scores[:, order], axis=1, kind="stable")[:, :7]]
    assert (whole == ref).all()


def test_exclude_removes_seen_items_and_pads_short_lists():
    seen = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    scores = np.array([[9, 8, 7, 1], [1, np.nan, 3, 2]], dtype=np.float32)
    top = top_k(exclude(scores, np.array([0, 1]), seen), 3)
    assert top.tolist() == [[3, NO_ITEM, NO_ITEM], [2, 3, 0]]


def test_activity_bands_split_users_by_train_size():
    counts = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    values = {"ndcg@10": np.arange(10, dtype=float)}
    bands = metrics.activity_bands(counts, values, n_bands=2)
    assert bands["edges"] == [1, 6, 10]  # quantiles 0, 0.5, 1 of the counts, rounded
    assert bands["n_users"] == [5, 5]
    assert bands["ndcg@10"] == pytest.approx([2.0, 7.0])
