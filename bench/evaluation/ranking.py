"""Top-K selection over a block of scores, with train items excluded.

Ties are broken deterministically by a fixed pseudo-random order of the items (a
permutation seeded with 0, see ``tie_order``), so a ranking does not depend on the sort
algorithm, the batch size or the number of threads.  Not by item code: in MovieLens the
codes follow the raw ids, which correlate with popularity, so code order would quietly
reward models that produce many ties (clipped ratings, an all-zero cold-item score).

Selection is one parallel numba pass per block (``bench.kernels.topk``): per row a K-slot
heap keyed by (score, tie rank); seen items, excluded items, NaN and -inf never enter it.
Models whose scores are a product of factors (``Adapter.factor_scores``, ``FactorScores``)
are scored and selected chunk by chunk of items, never as a whole user x item block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import scipy.sparse as sp

from bench.execution import progress
from bench.execution.threads import blas_limited
from bench.kernels import topk as kernels

NO_ITEM = kernels.NO_ITEM  # padding where a user has fewer than K candidate items
#: items per score tile of the factor path: a tile of a user block stays in cache
ITEM_CHUNK = 2048
#: users per score tile of the factor path (a tile of 128 x 2048 float32 is 1 MiB: it
#: stays in L2 between the product and the merge); one thread takes a group at a time
ROW_GROUP = 128
#: users per call of the shared-scores walk (memory is only their seen rows)
SHARED_BLOCK = 65536

_F32_MAX = np.float32(np.finfo(np.float32).max)


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


@lru_cache(maxsize=8)
def tie_rank(n_items: int) -> np.ndarray:
    """Each item's position in ``tie_order`` (its inverse): lower ranks first among ties."""
    rank = np.empty(n_items, dtype=np.int32)
    rank[tie_order(n_items)] = np.arange(n_items, dtype=np.int32)
    rank.setflags(write=False)
    return rank


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first; ``NO_ITEM`` pads short rows.

    Equal scores are ranked in ``tie_order``.  Cells that are -inf or NaN are never
    returned; +inf ranks above every finite score.  Returns ``(n_rows, min(k, n_items))``.
    """
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)  # exact for integers up to 2^53
    n_rows = scores.shape[0]
    no_seen = (np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
    return select(scores, k, *no_seen, cap=np.inf)


def top_k_by_position(scores: np.ndarray, k: int) -> np.ndarray:
    """Like ``top_k`` but equal scores are ranked by column position (lower first).

    The former numpy selection (no numba): kept as the independent reference the fused
    kernel is property-tested against and as the baseline of ``benchmarks/topk.py``.

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


def _slots(n_rows: int) -> int:
    """Row ranges of a parallel kernel call: one per numba thread (at least one row each)."""
    return max(1, min(numba.get_num_threads(), n_rows))


def _excluded_mask(n_items: int, excluded_items: np.ndarray | None) -> np.ndarray:
    """Boolean mask of ``excluded_items`` (item codes, or already a mask); empty: none."""
    if excluded_items is None:
        return np.zeros(0, dtype=np.bool_)
    excluded_items = np.asarray(excluded_items)
    if excluded_items.dtype == np.bool_:
        return np.ascontiguousarray(excluded_items)
    mask = np.zeros(n_items, dtype=np.bool_)
    mask[excluded_items.astype(np.int64)] = True
    return mask


def seen_rows(seen: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of the users' rows of ``seen``, indices sorted within rows."""
    rows = seen[users]
    if not rows.has_sorted_indices:
        rows = rows.copy()
        rows.sort_indices()
    return rows.indptr.astype(np.int64, copy=False), rows.indices.astype(np.int32, copy=False)


def select(
    scores: np.ndarray,
    k: int,
    seen_indptr: np.ndarray,
    seen_indices: np.ndarray,
    excluded: np.ndarray | None = None,
    cap: float = np.inf,
) -> np.ndarray:
    """Top-``k`` of each row of ``scores`` without its seen items (sorted CSR rows) and the
    ``excluded`` mask; +inf counts as ``cap``.  The fused kernel ``top_k`` and ``recommend``
    share."""
    scores = np.ascontiguousarray(scores)
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    out = np.empty((n_rows, max(k, 0)), dtype=np.int32)
    if k <= 0 or n_rows == 0:
        return out
    dtype = scores.dtype.type
    slots = _slots(n_rows)
    kernels.top_k_block(
        scores, dtype(cap), dtype(-np.inf), seen_indptr, seen_indices,
        np.zeros(0, np.bool_) if excluded is None else excluded,
        tie_rank(n_items), tie_order(n_items),
        np.empty((slots, k), dtype=scores.dtype), np.empty((slots, k), dtype=np.int32),
        out, slots,
    )  # fmt: skip
    return out


@dataclass
class FactorScores:
    """The scores of a block of users when they are a product of factors.

    ``score[u, i] = user_vectors[u] . item_vectors[i] + item_bias[i]`` (float32; no bias
    when ``None``), except that every user's score of ``fixed_items`` is ``fixed_score``
    (e.g. items without train rows ranked last).  Rows flagged in ``score_rows`` (bool, one
    per user) are not factor scores (e.g. users without train rows scored by popularity):
    ``recommend`` takes those rows from the adapter's ``score`` instead, or, when they all
    have the one score vector ``score_rows_scores`` (e.g. item popularity), ranks them by
    it: the catalogue ordered once and walked per user, as for ``Adapter.shared_scores``.

    The product is computed in tiles of ``ROW_GROUP`` users x ``ITEM_CHUNK`` items
    (``groups``, ``tiles``), and ``block`` assembles those very tiles: an adapter whose
    ``score`` is built on ``block`` gives bit for bit the scores that ``recommend``'s fused
    path ranks, whatever the BLAS does when a product is split.
    """

    user_vectors: np.ndarray
    item_vectors: np.ndarray
    item_bias: np.ndarray | None = None
    fixed_items: np.ndarray | None = None
    fixed_score: float = 0.0
    score_rows: np.ndarray | None = None
    score_rows_scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.user_vectors = np.ascontiguousarray(self.user_vectors, dtype=np.float32)
        self.item_vectors = np.asarray(self.item_vectors, dtype=np.float32)
        if self.item_bias is not None:
            self.item_bias = np.asarray(self.item_bias, dtype=np.float32)
        if self.fixed_items is not None:
            self.fixed_items = np.unique(np.asarray(self.fixed_items, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, int]:
        return self.user_vectors.shape[0], self.item_vectors.shape[0]

    def tiles(self, first: int = 0, last: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first item, scores of items first .. first + ITEM_CHUNK)`` for every chunk, for
        the users ``first .. last`` of the block (all by default).

        A tile is overwritten by the next one: use it before asking for the next.  The
        caller holds BLAS at one thread (``blas_limited(1)``): OpenBLAS hands a product this
        small to its threads at a cost above the product's (several times slower on 2
        threads), and the scores then cannot depend on the BLAS thread count."""
        n_users, n_items = self.shape
        last = n_users if last is None else last
        users = self.user_vectors[first:last]
        chunk = ITEM_CHUNK
        width = min(chunk, n_items)
        buffer = np.empty((len(users), width), dtype=np.float32)
        for lo in range(0, n_items, chunk):
            hi = min(lo + chunk, n_items)
            tile = buffer if hi - lo == width else np.empty((len(users), hi - lo), np.float32)
            np.matmul(users, self.item_vectors[lo:hi].T, out=tile)
            if self.item_bias is not None:
                tile += self.item_bias[lo:hi]
            if self.fixed_items is not None:
                a, b = np.searchsorted(self.fixed_items, [lo, hi])
                tile[:, self.fixed_items[a:b] - lo] = np.float32(self.fixed_score)
            yield lo, tile

    def groups(self) -> list[tuple[int, int]]:
        """The user ranges ``(first, last)`` of ``ROW_GROUP`` users the tiles are made for:
        fixed, so the scores do not depend on the thread count."""
        n_users = self.shape[0]
        return [(lo, min(lo + ROW_GROUP, n_users)) for lo in range(0, n_users, ROW_GROUP)]

    def block(self) -> np.ndarray:
        """The whole ``(n_users, n_items)`` float32 score block, from the same tiles."""
        out = np.empty(self.shape, dtype=np.float32)
        with blas_limited(1, rescan=False):
            for first, last in self.groups():
                for lo, tile in self.tiles(first, last):
                    out[first:last, lo : lo + tile.shape[1]] = tile
        return out


def select_factors(
    factors: FactorScores,
    k: int,
    seen_indptr: np.ndarray,
    seen_indices: np.ndarray,
    excluded: np.ndarray | None = None,
    skip_rows: np.ndarray | None = None,
) -> np.ndarray:
    """``select(factors.block(), ...)`` with +inf as float32's max (as ``exclude`` does),
    without the block: each tile is scored and merged into per-row heaps.  Rows flagged in
    ``skip_rows`` (bool) are left empty (``NO_ITEM``): ``recommend`` ranks ``score_rows``
    its own way, and their factor scores may be all equal (zero vectors: every cell a tie)."""
    n_rows, n_items = factors.shape
    k = min(k, n_items)
    out = np.empty((n_rows, max(k, 0)), dtype=np.int32)
    if k <= 0 or n_rows == 0:
        return out
    heap_s = np.empty((n_rows, k), dtype=np.float32)
    heap_r = np.empty((n_rows, k), dtype=np.int32)
    sizes = np.zeros(n_rows, dtype=np.int32)
    rank = tie_rank(n_items)
    excluded = np.zeros(0, np.bool_) if excluded is None else excluded
    no_skip = np.zeros(0, np.bool_)
    skip = no_skip if skip_rows is None else np.ascontiguousarray(skip_rows, dtype=np.bool_)

    def merge_group(group: tuple[int, int]) -> None:
        # one thread per group: its tiles stay in cache from the product to the merge
        first, last = group
        for lo, tile in factors.tiles(first, last):
            kernels.merge_rows(
                tile, lo, _F32_MAX, np.float32(-np.inf), seen_indptr[first : last + 1],
                seen_indices, excluded, rank, heap_s[first:last], heap_r[first:last],
                sizes[first:last], skip[first:last] if len(skip) else no_skip,
            )  # fmt: skip

    groups = factors.groups()
    threads = min(numba.get_num_threads(), len(groups))
    with blas_limited(1, rescan=False):
        if threads <= 1:
            for group in groups:
                merge_group(group)
        else:  # numpy's product and the nogil kernel both release the GIL
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(merge_group, groups))
    kernels.drain(heap_s, heap_r, sizes, tie_order(n_items), out, _slots(n_rows))
    return out


def batch_size(n_items: int, budget_bytes: int = 256 * 2**20) -> int:
    """Users per scoring block so one float32 block stays within ``budget_bytes``."""
    return max(1, min(4096, budget_bytes // (4 * max(n_items, 1))))


def _score_block(
    score: Callable[[np.ndarray], np.ndarray], users: np.ndarray, n_items: int, name: str
) -> np.ndarray:
    scores = np.ascontiguousarray(score(users), dtype=np.float32)
    if scores.shape != (len(users), n_items):
        raise ValueError(f"{name} returned shape {scores.shape}, want ({len(users)}, {n_items})")
    return scores


def _check_factors(factors: FactorScores, n_users: int, n_items: int, name: str) -> None:
    u, v = factors.user_vectors, factors.item_vectors
    if u.ndim != 2 or v.ndim != 2 or u.shape[0] != n_users or v.shape != (n_items, u.shape[1]):
        raise ValueError(
            f"{name}: factor_scores gave users {u.shape} x items {v.shape}, "
            f"want ({n_users}, f) x ({n_items}, f)"
        )


def shared_order(scores: np.ndarray, cap: float = np.inf) -> np.ndarray:
    """Items in ranking order for one score vector every user shares: best first (+inf
    counts as ``cap``), ties in ``tie_order``; -inf and NaN items are left out, as ``select``
    never returns them."""
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf, posinf=float(cap),
                      neginf=-np.inf)
    keep = np.flatnonzero(s > -np.inf)
    return keep[np.lexsort((tie_rank(len(s))[keep], -s[keep]))].astype(np.int32)


def _vector_order(vector: np.ndarray, n_items: int, what: str) -> np.ndarray:
    """``shared_order`` of one score vector every ranked user has, after checking its shape
    (``what`` names it in the error)."""
    if np.shape(vector) != (n_items,):
        raise ValueError(f"{what} have shape {np.shape(vector)}, want ({n_items},)")
    return shared_order(vector, cap=_F32_MAX)


def select_shared(
    order: np.ndarray, n_items: int, k: int, seen_indptr: np.ndarray, seen_indices: np.ndarray,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """``select`` for rows that all have the scores ``order`` was made from."""
    k = min(k, n_items)
    n_rows = len(seen_indptr) - 1
    out = np.empty((n_rows, max(k, 0)), dtype=np.int32)
    if k <= 0 or n_rows == 0:
        return out
    kernels.walk_shared(order, seen_indptr, seen_indices,
                        np.zeros(0, np.bool_) if excluded is None else excluded, out,
                        _slots(n_rows))
    return out


def recommend(
    score: Callable[[np.ndarray], np.ndarray],
    users: np.ndarray,
    seen: sp.csr_matrix,
    k: int,
    excluded_items: np.ndarray | None = None,
    name: str = "score",
    factors: Callable[[np.ndarray], FactorScores | None] | None = None,
    shared: Callable[[], np.ndarray | None] | None = None,
) -> np.ndarray:
    """Top-``k`` items of each of ``users`` (rows of ``NO_ITEM``-padded item codes).

    ``shared()`` (an adapter's ``shared_scores``), when given and not ``None``, is the one
    score vector of every user (e.g. popularity): the catalogue is then ordered once and
    each user's list is the first ``k`` items of that order not seen, with the same result
    as ranking ``score(block)``.

    ``score(block)`` gives a block of users' scores over the whole catalogue; each user's
    ``seen`` items (and ``excluded_items``, for every user) are removed before the top-K,
    NaN scores never ranked and +inf counted as float32's max (``exclude``).  Users are
    scored in blocks of ``batch_size`` so memory stays bounded.  ``name`` says whose
    scores had the wrong shape in the error.

    ``factors(block)`` (an adapter's ``factor_scores``), when given and not ``None`` for a
    block, describes that block's scores as a product of factors: they are then scored and
    selected an item chunk at a time (``select_factors``), with the same result as ranking
    ``score(block)`` when ``score`` is built on ``FactorScores.block``.
    """
    n_items = seen.shape[1]
    step = batch_size(n_items)
    excluded = _excluded_mask(n_items, excluded_items)
    common = shared() if shared is not None else None
    if common is not None:  # one score vector for everyone: one order, walked per user
        order = _vector_order(common, n_items, f"{name} shared scores")
        tops = []
        for lo in range(0, len(users), SHARED_BLOCK):
            progress.report("ranking users", lo, len(users))
            block = users[lo : lo + SHARED_BLOCK]
            tops.append(select_shared(order, n_items, k, *seen_rows(seen, block), excluded))
        return np.concatenate(tops) if tops else np.empty((0, k), np.int32)
    tops = []
    fallback: tuple[np.ndarray, np.ndarray] | None = None  # (score_rows_scores, its order)
    for lo in range(0, len(users), step):
        progress.report("ranking users", lo, len(users))
        block = users[lo : lo + step]
        indptr, indices = seen_rows(seen, block)
        fs = factors(block) if factors is not None else None
        if fs is None:
            scores = _score_block(score, block, n_items, name)
            tops.append(select(scores, k, indptr, indices, excluded, cap=_F32_MAX))
            continue
        _check_factors(fs, len(block), n_items, name)
        top = select_factors(fs, k, indptr, indices, excluded, skip_rows=fs.score_rows)
        rows = np.zeros(0, np.int64) if fs.score_rows is None else np.flatnonzero(fs.score_rows)
        if len(rows) and fs.score_rows_scores is not None:  # one vector: one order, walked
            if fallback is None or fallback[0] is not fs.score_rows_scores:
                vector = fs.score_rows_scores
                fallback = (vector, _vector_order(vector, n_items, f"{name} score_rows_scores"))
            top[rows] = select_shared(fallback[1], n_items, k, *seen_rows(seen, block[rows]),
                                      excluded)
        elif len(rows):
            scores = _score_block(score, block[rows], n_items, name)
            top[rows] = select(scores, k, *seen_rows(seen, block[rows]), excluded, cap=_F32_MAX)
        tops.append(top)
    return np.concatenate(tops) if tops else np.empty((0, k), np.int32)
