"""How explicit ratings become implicit feedback: one policy shared by every ranking-only model.

Ranking-only libraries (LightFM, implicit, PureSVD) learn from "user interacted with item",
not from a 1-5 rating.  Which rated items count, and how much, changes their results, so the
choice is made here, once, and every such adapter exposes it through the same three keyword
arguments (declared once, by ``bench.adapter.LearnsFromInteractions``; the matrix is built by
``TrainSet.interactions(policy)`` / ``Ratings.interactions(policy)`` in ``bench.data.model``):

* ``feedback="all"`` (default, the Microsoft Recommenders protocol): every rated item is an
  interaction with value 1, whatever the rating.
* ``feedback="threshold"``: only ratings ``>= feedback_threshold`` are interactions (value 1);
  lower ratings are dropped as if never seen.
* ``feedback="confidence"``: every rated item is an interaction with value
  ``1 + feedback_alpha * rating`` (Hu, Koren, Volinsky 2008), so higher ratings weigh more.

The result is a user x item CSR matrix over the whole catalogue (users as rows), float32,
duplicates summed away by keeping one entry per (user, item) pair.

Implicit-only datasets (``Dataset.value_kind``, see ``bench.data.model``) go through the same
policy, with their values in place of ratings:

* ``"presence"`` (user, item[, timestamp] rows without a value): every value is 1, so
  ``all`` is the natural policy; ``confidence`` gives every interaction the same
  1 + alpha; ``threshold`` keeps every row only with ``feedback_threshold <= 1`` (at the
  default 4 it would keep none: do not use it on such data).
* ``"count"`` (a plays / clicks column): a row is an interaction whatever its count; under
  ``all`` its value is 1; under ``threshold`` only counts ``>= feedback_threshold`` are kept
  (e.g. "played at least 4 times"); under ``confidence`` the value is
  ``1 + feedback_alpha * count``, Hu, Koren and Volinsky's confidence for play counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bench.errors import UserError

FEEDBACK_KINDS: tuple[str, ...] = ("all", "threshold", "confidence")


@dataclass(frozen=True)
class FeedbackPolicy:
    """Which ratings become interactions, and with what value (see the module docstring).

    The one place a policy is validated: every adapter builds its policy from its
    ``feedback`` / ``feedback_threshold`` / ``feedback_alpha`` parameters through this class.
    """

    kind: str = "all"  # one of FEEDBACK_KINDS
    threshold: float = 4.0  # used by kind="threshold"
    alpha: float = 1.0  # used by kind="confidence"

    def __post_init__(self) -> None:
        if self.kind not in FEEDBACK_KINDS:
            raise UserError(
                f"unknown feedback policy {self.kind!r}; choose one of {', '.join(FEEDBACK_KINDS)}"
            )
        if self.kind == "confidence" and not self.alpha >= 0:
            raise UserError(f"feedback_alpha must be >= 0, got {self.alpha!r}")

    @property
    def binary(self) -> bool:
        """True when every interaction has value 1 (no confidence weights)."""
        return self.kind != "confidence"

    def matrix(
        self, users: np.ndarray, items: np.ndarray, values: np.ndarray, shape: tuple[int, int]
    ) -> sp.csr_matrix:
        """User x item float32 CSR of the interactions of (user, item, value) rows.

        A (user, item) pair given more than once counts once; with ``confidence`` its value
        comes from the highest rating, so repeated rows cannot inflate a confidence.
        ``bench.data.model.Ratings.interactions`` is the usual way in.
        """
        values = values.astype(np.float32, copy=False)
        if self.kind == "threshold":
            keep = values >= np.float32(self.threshold)
            users, items, values = users[keep], items[keep], values[keep]
        if self.kind == "confidence":
            data = np.float32(1.0) + np.float32(self.alpha) * values
        else:
            data = np.ones(len(users), dtype=np.float32)
        n_items = shape[1]
        # One entry per pair: take the max over duplicates (COO -> CSR would sum them).
        matrix = sp.coo_matrix((data, (users, items)), shape=shape).tocsr(copy=False)
        if matrix.nnz != len(data):  # duplicates were summed: redo with max instead
            order = np.lexsort((-data, items, users))
            first = np.ones(len(order), dtype=bool)
            key = users[order].astype(np.int64) * n_items + items[order]
            first[1:] = key[1:] != key[:-1]
            pick = order[first]
            matrix = sp.csr_matrix((data[pick], (users[pick], items[pick])), shape=shape)
        matrix.sort_indices()
        return matrix.astype(np.float32, copy=False)


def item_popularity(interactions: sp.csr_matrix) -> np.ndarray:
    """float32 number of users with an interaction per item: the fallback ranking."""
    return np.diff(interactions.tocsc().indptr).astype(np.float32)


def fill_cold_users(
    scores: np.ndarray, users: np.ndarray, user_has_train: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """Score users without train rows by item popularity instead of an untrained vector.

    Ranking models without user features know nothing about such users; their factors are
    zero or random initial values, so popularity is the sensible, deterministic fallback.
    Modifies and returns ``scores`` (rows aligned with ``users``).
    """
    cold_rows = ~user_has_train[users]
    if cold_rows.any():
        scores[cold_rows] = popularity
    return scores
