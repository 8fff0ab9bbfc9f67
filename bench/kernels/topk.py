"""Numba kernels of the fused top-K: exclusion, NaN handling, tie order and selection.

One pass over a block of scores (rows = users, columns = items), parallel over rows.  Each
row keeps a K-slot binary min-heap of ``(score, tie rank)`` pairs whose root is the worst of
the K best seen so far: the lower score, or on equal scores the later tie rank
(``tie rank`` = the item's position in ``bench.evaluation.ranking.tie_order``).  Cells are first
compared with the root score, ``GROUP`` at a time (a vectorised comparison), which rejects
almost every cell of a full-catalogue row; only a cell at or above the root is then
looked at singly: checked for NaN / -inf, its tie rank compared on equal scores, against
the globally excluded items (a boolean mask) and against the row's seen items (binary search
in its sorted CSR row), so the exclusions cost nothing per cell.  At the end each heap is
drained worst-first into the back of the output row, giving best-first item codes padded
with ``NO_ITEM``.

The result equals a stable sort of each row by (score descending, tie rank ascending) with
seen / excluded / NaN / -inf cells removed, cut at K; ``+inf`` cells count as ``cap`` (the
harness passes float32's max, as ``bench.evaluation.ranking.exclude`` does, ``top_k``
passes +inf).

The heaps can also be filled a tile at a time (``merge_rows`` then ``drain``): the factor
path of ``bench.evaluation.ranking.recommend`` scores a group of users' item chunks into a
cache-sized tile and merges each into the same heaps, never holding a whole user x item
block; row groups run on threads of the caller's (``merge_rows`` releases the GIL).

Threads: ``n_slots`` (the numba thread count, read in Python: ``numba.get_num_threads()``
inside an ``njit`` function defeats ``cache=True``) contiguous row ranges, one per
``prange`` iteration.  Rows are independent, so the result does not depend on it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NO_ITEM = -1
#: cells compared with the heap root at once before any is looked at singly
GROUP = 16


@njit(cache=True, inline="always")
def _worse(s1, r1, s2, r2) -> bool:
    """(s1, r1) ranks after (s2, r2): lower score, or the same score and later tie rank."""
    return s1 < s2 or (s1 == s2 and r1 > r2)


@njit(cache=True, inline="always")
def _sift_down(hs, hr, n, pos) -> None:
    s = hs[pos]
    r = hr[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        right = child + 1
        if right < n and _worse(hs[right], hr[right], hs[child], hr[child]):
            child = right
        if not _worse(hs[child], hr[child], s, r):
            break
        hs[pos] = hs[child]
        hr[pos] = hr[child]
        pos = child
    hs[pos] = s
    hr[pos] = r


@njit(cache=True, inline="always")
def _sift_up(hs, hr, pos) -> None:
    s = hs[pos]
    r = hr[pos]
    while pos > 0:
        parent = (pos - 1) // 2
        if not _worse(s, r, hs[parent], hr[parent]):
            break
        hs[pos] = hs[parent]
        hr[pos] = hr[parent]
        pos = parent
    hs[pos] = s
    hr[pos] = r


@njit(cache=True, inline="always")
def _is_seen(seen_indices, seen_lo, seen_hi, item) -> bool:
    """``item`` is among the row's sorted seen items ``seen_indices[seen_lo:seen_hi]``
    (binary search)."""
    lo = seen_lo
    hi = seen_hi
    while lo < hi:
        mid = (lo + hi) // 2
        if seen_indices[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    return lo < seen_hi and seen_indices[lo] == item


@njit(cache=True, inline="always")
def _offer(s, item, cap, floor, seen_indices, seen_lo, seen_hi, excluded, rank, hs, hr, n,
           thr_s, thr_r):  # fmt: skip
    """Put item ``item`` with score ``s`` into the heap if it belongs there; returns the new
    ``(n, thr_s, thr_r)`` (entry count; root score and tie rank once the heap is full)."""
    k = hs.shape[0]
    if not s > floor:  # NaN or -inf: never returned
        return n, thr_s, thr_r
    if s > cap:
        s = cap
    r = np.int64(rank[item])
    if n == k and (s < thr_s or (s == thr_s and r > thr_r)):
        return n, thr_s, thr_r
    if excluded.shape[0] > 0 and excluded[item]:
        return n, thr_s, thr_r
    if _is_seen(seen_indices, seen_lo, seen_hi, item):
        return n, thr_s, thr_r
    if n < k:
        hs[n] = s
        hr[n] = r
        _sift_up(hs, hr, n)
        n += 1
        if n < k:
            return n, thr_s, thr_r
    else:
        hs[0] = s
        hr[0] = r
        _sift_down(hs, hr, k, 0)
    return n, hs[0], np.int64(hr[0])


@njit(cache=True, inline="always")
def _scan_row(row, col0, cap, floor, seen_indices, seen_lo, seen_hi, excluded, rank, hs, hr,
              n_before):  # fmt: skip
    """Merge the cells of ``row`` (items ``col0 + j``) into the heap ``hs, hr`` holding
    ``n_before`` entries; returns the new count.  ``floor`` is -inf of the scores' type.

    Cells are tested against the root a group of ``GROUP`` at a time (a comparison the
    compiler vectorises); a group with no cell at or above it is skipped whole.
    """
    k = hs.shape[0]
    count = np.int64(n_before)
    thr_s = hs[0] if count == k else floor
    thr_r = np.int64(hr[0]) if count == k else np.int64(0)
    n_cells = row.shape[0]
    end = n_cells - n_cells % GROUP
    for g in range(0, end, GROUP):
        hit = False
        for j in range(g, g + GROUP):
            hit |= row[j] >= thr_s
        if hit:
            for j in range(g, g + GROUP):
                if row[j] >= thr_s:
                    count, thr_s, thr_r = _offer(row[j], col0 + j, cap, floor, seen_indices,
                                                 seen_lo, seen_hi, excluded, rank, hs, hr,
                                                 count, thr_s, thr_r)  # fmt: skip
    for j in range(end, n_cells):
        if row[j] >= thr_s:
            count, thr_s, thr_r = _offer(row[j], col0 + j, cap, floor, seen_indices, seen_lo,
                                         seen_hi, excluded, rank, hs, hr, count, thr_s,
                                         thr_r)  # fmt: skip
    return count


@njit(cache=True, inline="always")
def _drain_row(hs, hr, n, order, out) -> None:
    """Write the heap's items best first into ``out`` (then ``NO_ITEM``); empties the heap."""
    for pos in range(n - 1, -1, -1):
        out[pos] = order[hr[0]]
        hs[0] = hs[pos]
        hr[0] = hr[pos]
        _sift_down(hs, hr, pos, 0)
    for pos in range(n, out.shape[0]):
        out[pos] = NO_ITEM


@njit(cache=True, parallel=True)
def top_k_block(scores, cap, floor, indptr, indices, excluded, rank, order, heap_s, heap_r,
                out, n_slots):  # fmt: skip
    """Top ``out.shape[1]`` items of every row of ``scores`` into ``out``, in one pass.

    Row ``i``'s seen items are ``indices[indptr[i]:indptr[i + 1]]`` (sorted); ``excluded``
    is a boolean mask over items (length 0: none); ``rank`` / ``order`` the tie rank of each
    item and its inverse; ``heap_s`` / ``heap_r`` ``(n_slots, K)`` scratch.
    """
    n_rows = scores.shape[0]
    for slot in prange(n_slots):
        hs = heap_s[slot]
        hr = heap_r[slot]
        for i in range(slot * n_rows // n_slots, (slot + 1) * n_rows // n_slots):
            n = _scan_row(scores[i], 0, cap, floor, indices, indptr[i], indptr[i + 1],
                          excluded, rank, hs, hr, 0)  # fmt: skip
            _drain_row(hs, hr, n, order, out[i])


@njit(cache=True, nogil=True)
def merge_rows(tile, col0, cap, floor, indptr, indices, excluded, rank, heap_s, heap_r, sizes,
               skip):  # fmt: skip
    """Merge a tile (its rows' items ``col0 .. col0 + tile.shape[1]``) into the rows' heaps
    ``heap_s`` / ``heap_r`` ``(rows, K)`` holding ``sizes`` entries (updated), except rows
    flagged in ``skip`` (length 0: none).  Serial and without the GIL: the caller runs one
    row group per thread, each on its own rows."""
    has_skip = skip.shape[0] > 0
    for i in range(tile.shape[0]):
        if has_skip and skip[i]:
            continue
        sizes[i] = _scan_row(tile[i], col0, cap, floor, indices, indptr[i], indptr[i + 1],
                             excluded, rank, heap_s[i], heap_r[i], sizes[i])  # fmt: skip


@njit(cache=True, parallel=True)
def drain(heap_s, heap_r, sizes, order, out, n_slots) -> None:
    """The per-row heaps of ``merge_tile`` as best-first item codes into ``out``."""
    n_rows = heap_s.shape[0]
    for slot in prange(n_slots):
        for i in range(slot * n_rows // n_slots, (slot + 1) * n_rows // n_slots):
            _drain_row(heap_s[i], heap_r[i], sizes[i], order, out[i])


@njit(parallel=True, cache=True)
def walk_shared(order, indptr, indices, excluded, out, n_slots) -> None:
    """Top-k rows when every user has the same scores: walk the one ranking ``order`` and
    keep the first ``out.shape[1]`` items not in the row's seen set (sorted CSR rows,
    binary search) nor ``excluded``; pad with ``NO_ITEM``.  O(k + seen items passed) per row
    instead of O(items)."""
    n_rows, k = out.shape
    n_order = len(order)
    has_excluded = len(excluded) > 0
    for slot in prange(n_slots):
        for r in range(slot * n_rows // n_slots, (slot + 1) * n_rows // n_slots):
            a, b = indptr[r], indptr[r + 1]
            n = 0
            j = 0
            while n < k and j < n_order:
                item = order[j]
                j += 1
                if has_excluded and excluded[item]:
                    continue
                if _is_seen(indices, a, b, item):
                    continue
                out[r, n] = item
                n += 1
            for m in range(n, k):
                out[r, m] = NO_ITEM
