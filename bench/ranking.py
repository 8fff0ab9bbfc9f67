"""Top-K selection over a block of scores, with train items excluded.

Ties are broken deterministically by a fixed pseudo-random order of the items (a
permutation seeded with 0, see ``tie_order``), so a ranking does not depend on the sort
algorithm, the batch size or the number of threads.  Not by item code: in MovieLens the
codes follow the raw ids, which correlate with popularity, so code order would quietly
reward models that produce many ties (clipped ratings, an all-zero cold-item score).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

NO_ITEM = -1  # padding where a user has fewer than K candidate items


def exclude(scores: np.ndarray, users: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Set the scores of each user's ``seen`` items (and NaNs) to -inf, in place."""
    block = seen[users]
    rows = np.repeat(np.arange(len(users)), np.diff(block.indptr))
    scores[rows, block.indices] = -np.inf
    np.nan_to_num(
        scores, copy=False, nan=-np.inf, posinf=np.finfo(scores.dtype).max, neginf=-np.inf
    )
    return scores


@lru_cache(maxsize=8)
def tie_order(n_items: int) -> np.ndarray:
    """The fixed order in which equal scores are ranked (same for every model and run)."""
    order = np.random.default_rng(0).permutation(n_items).astype(np.int32)
    order.setflags(write=False)
    return order


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first; ``NO_ITEM`` pads -inf rows.

    Equal scores are ranked in ``tie_order``.
    """
    order = tie_order(scores.shape[1])
    best = top_k_by_position(scores[:, order], k)
    return np.where(best >= 0, order[np.maximum(best, 0)], NO_ITEM).astype(np.int32)


def top_k_by_position(scores: np.ndarray, k: int) -> np.ndarray:
    """Like ``top_k`` but equal scores are ranked by column position (lower first).

    The k-th best value is found with ``np.partition``; items above it are all taken and
    items equal to it are taken in column order until k are chosen.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if k == 0 or n_rows == 0:
        return np.full((n_rows, k), NO_ITEM, dtype=np.int32)
    kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k][:, None]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    rows, cols = np.nonzero(chosen)  # row-major: cols ascending within each row
    cols = cols.reshape(n_rows, k)
    vals = np.take_along_axis(scores, cols, axis=1)
    # Sort the k chosen by score descending; stable, so equal scores keep item order.
    order = np.argsort(-vals, axis=1, kind="stable")
    best = np.take_along_axis(cols, order, axis=1).astype(np.int32)
    best[np.take_along_axis(vals, order, axis=1) == -np.inf] = NO_ITEM
    return best


def batch_size(n_items: int, budget_bytes: int = 256 * 2**20) -> int:
    """Users per scoring block so one float32 block stays within ``budget_bytes``."""
    return max(1, min(4096, budget_bytes // (4 * max(n_items, 1))))


def recommend(
    score: Callable[[np.ndarray], np.ndarray],
    users: np.ndarray,
    seen: sp.csr_matrix,
    k: int,
    excluded_items: np.ndarray | None = None,
    name: str = "score",
) -> np.ndarray:
    """Top-``k`` items of each of ``users`` (rows of ``NO_ITEM``-padded item codes).

    ``score(block)`` gives a block of users' scores over the whole catalogue; each user's
    ``seen`` items (and ``excluded_items``, for every user) are removed before the top-K.
    Users are scored in blocks of ``batch_size`` so memory stays bounded.  ``name`` says
    whose scores had the wrong shape in the error.
    """
    n_items = seen.shape[1]
    step = batch_size(n_items)
    tops = []
    for lo in range(0, len(users), step):
        block = users[lo : lo + step]
        scores = np.array(score(block), dtype=np.float32)
        if scores.shape != (len(block), n_items):
            raise ValueError(
                f"{name} returned shape {scores.shape}, want ({len(block)}, {n_items})"
            )
        exclude(scores, block, seen)
        if excluded_items is not None:
            scores[:, excluded_items] = -np.inf
        tops.append(top_k(scores, k))
    return np.concatenate(tops) if tops else np.empty((0, k), np.int32)
