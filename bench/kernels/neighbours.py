"""Numba kernels reproducing Surprise's k-NN and Slope One prediction rules on arrays.

Surprise predicts one (user, item) pair at a time in Python; scoring a whole catalogue
that way takes minutes (Surprise #451).  These kernels apply the same rules to many pairs
at once, parallel over pairs, from the fitted Surprise structures laid out as CSR arrays.

Notation follows ``surprise/prediction_algorithms/knns.py``: ``x`` is the entity whose
neighbours are used (user when ``user_based``, else item) and ``y`` the other one; the
neighbours of ``x`` for ``y`` are the ``x2`` listed in ``yr[y]`` (everyone who rated ``y``),
weighted by ``sim[x, x2]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: pairs are split into this many tasks per thread so uneven rows balance out
TASKS_PER_THREAD = 8


@njit(cache=True)
def kth_largest(values: np.ndarray, n: int, k: int) -> float:
    """The k-th largest of ``values[:n]`` (1 <= k <= n); reorders ``values`` in place.

    Quickselect (Hoare partition, median of three) so no temporary is allocated per pair.
    """
    target = k - 1  # position in descending order
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        a = values[lo]
        b = values[mid]
        c = values[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i = lo
        j = hi
        while i <= j:
            while values[i] > pivot:
                i += 1
            while values[j] < pivot:
                j -= 1
            if i <= j:
                tmp = values[i]
                values[i] = values[j]
                values[j] = tmp
                i += 1
                j -= 1
        # now values[lo..j] >= pivot >= values[i..hi], and values[j+1..i-1] == pivot
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return pivot
    return values[target]


@njit(cache=True, parallel=True)
def knn_aggregate(
    xs: np.ndarray,
    ys: np.ndarray,
    sim: np.ndarray,
    yr_indptr: np.ndarray,
    yr_neighbours: np.ndarray,
    yr_residuals: np.ndarray,
    k: int,
    n_tasks: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-weighted mean of neighbour residuals for each pair ``(xs[p], ys[p])``.

    Surprise's rule: take ``heapq.nlargest(k)`` of the neighbours by similarity, then sum
    only those with ``sim > 0``.  Positive similarities always outrank the others, so that
    equals "the k largest positive similarities"; ``nlargest`` is stable, so among equal
    similarities at the cut the neighbour listed first in ``yr[y]`` wins.  We reproduce
    both, which matters for ``msd`` similarities where ties at 1.0 are common.

    Returns ``(mean, actual_k)``: ``sum(sim * residual) / sum(sim)`` over the chosen
    neighbours (0 when none) and how many were used.  Both ids must be known (>= 0).
    """
    n_pairs = xs.shape[0]
    mean = np.zeros(n_pairs, dtype=np.float64)
    actual_k = np.zeros(n_pairs, dtype=np.int32)
    if n_pairs == 0 or k <= 0:
        return mean, actual_k
    longest = 0
    for y in range(yr_indptr.shape[0] - 1):
        longest = max(longest, yr_indptr[y + 1] - yr_indptr[y])
    chunk = (n_pairs + n_tasks - 1) // n_tasks
    for task in prange(n_tasks):
        weights = np.empty(longest, dtype=np.float64)
        values = np.empty(longest, dtype=np.float64)
        scratch = np.empty(longest, dtype=np.float64)
        for p in range(task * chunk, min(n_pairs, (task + 1) * chunk)):
            x = xs[p]
            y = ys[p]
            m = 0
            for e in range(yr_indptr[y], yr_indptr[y + 1]):
                s = sim[x, yr_neighbours[e]]
                if s > 0.0:
                    weights[m] = s
                    values[m] = yr_residuals[e]
                    m += 1
            if m == 0:
                continue
            num = 0.0
            den = 0.0
            if m <= k:
                for t in range(m):
                    num += weights[t] * values[t]
                    den += weights[t]
                actual_k[p] = m
            else:
                scratch[:m] = weights[:m]
                cut = kth_largest(scratch, m, k)
                n_above = 0
                for t in range(m):
                    if weights[t] > cut:
                        n_above += 1
                ties_left = k - n_above
                for t in range(m):
                    w = weights[t]
                    if w > cut or (w == cut and ties_left > 0):
                        if w == cut:
                            ties_left -= 1
                        num += w * values[t]
                        den += w
                actual_k[p] = k
            mean[p] = num / den
    return mean, actual_k


@njit(cache=True, parallel=True)
def knn_scatter(
    xs: np.ndarray,
    column_of_y: np.ndarray,
    n_columns: int,
    sim: np.ndarray,
    xr_indptr: np.ndarray,
    xr_others: np.ndarray,
    xr_residuals: np.ndarray,
    yr_indptr: np.ndarray,
    yr_neighbours: np.ndarray,
    yr_residuals: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Same result as ``knn_aggregate`` for every pair (xs[r], y), y over all columns.

    For a whole catalogue this is much cheaper than per-pair selection: for one ``x``,
    walk its neighbours ``x2`` by decreasing similarity and hand each of their ratings
    ``(x2, y)`` to ``y`` until ``y`` holds ``k``; each rating is touched once per ``x``.
    Neighbours with equal similarity form one group; when a group does not fit in the
    ``k - taken`` places left for ``y``, the places go to the group members listed first
    in ``yr[y]``, as in Surprise's ``heapq.nlargest``.

    ``xr`` lists the ratings of each ``x2`` (y id, residual), ``yr`` those of each ``y``
    (x2 id, residual), both in Surprise's order.  ``column_of_y[y]`` is the output column
    of ``y`` or -1 to skip it.  Returns ``(mean, actual_k)`` of shape (len(xs), n_columns).
    """
    n_rows = xs.shape[0]
    n_x = sim.shape[0]
    n_y = column_of_y.shape[0]
    mean = np.zeros((n_rows, n_columns), dtype=np.float64)
    actual_k = np.zeros((n_rows, n_columns), dtype=np.int32)
    if k <= 0:
        return mean, actual_k
    for row in prange(n_rows):
        x = xs[row]
        taken = np.zeros(n_y, dtype=np.int64)
        num = np.zeros(n_y, dtype=np.float64)
        den = np.zeros(n_y, dtype=np.float64)
        hits = np.zeros(n_y, dtype=np.int64)
        group_num = np.zeros(n_y, dtype=np.float64)
        touched = np.empty(n_y, dtype=np.int64)
        similar = np.empty(n_x, dtype=np.int64)
        n_similar = 0
        for x2 in range(n_x):
            if sim[x, x2] > 0.0:
                similar[n_similar] = x2
                n_similar += 1
        neighbours = similar[:n_similar]
        order = np.argsort(-sim[x, neighbours])
        start = 0
        while start < n_similar:
            s = sim[x, neighbours[order[start]]]
            stop = start + 1
            while stop < n_similar and sim[x, neighbours[order[stop]]] == s:
                stop += 1
            if stop - start == 1:
                x2 = neighbours[order[start]]
                for e in range(xr_indptr[x2], xr_indptr[x2 + 1]):
                    y = xr_others[e]
                    if taken[y] < k and column_of_y[y] >= 0:
                        num[y] += s * xr_residuals[e]
                        den[y] += s
                        taken[y] += 1
            else:
                n_touched = 0
                for g in range(start, stop):
                    x2 = neighbours[order[g]]
                    for e in range(xr_indptr[x2], xr_indptr[x2 + 1]):
                        y = xr_others[e]
                        if taken[y] < k and column_of_y[y] >= 0:
                            if hits[y] == 0:
                                touched[n_touched] = y
                                n_touched += 1
                            hits[y] += 1
                            group_num[y] += s * xr_residuals[e]
                for t in range(n_touched):
                    y = touched[t]
                    if taken[y] + hits[y] <= k:
                        num[y] += group_num[y]
                        den[y] += s * hits[y]
                        taken[y] += hits[y]
                    else:  # the cut falls inside the group: first listed in yr[y] win
                        for e in range(yr_indptr[y], yr_indptr[y + 1]):
                            if taken[y] == k:
                                break
                            if sim[x, yr_neighbours[e]] == s:
                                num[y] += s * yr_residuals[e]
                                den[y] += s
                                taken[y] += 1
                    hits[y] = 0
                    group_num[y] = 0.0
            start = stop
        for y in range(n_y):
            column = column_of_y[y]
            if column >= 0 and taken[y] > 0:
                mean[row, column] = num[y] / den[y]
                actual_k[row, column] = taken[y]
    return mean, actual_k


@njit(cache=True, parallel=True)
def slope_one_pairs(
    users: np.ndarray,
    items: np.ndarray,
    ur_indptr: np.ndarray,
    ur_items: np.ndarray,
    dev: np.ndarray,
    related: np.ndarray,
    n_tasks: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: sum of ``dev[i, j]`` over the items ``j`` the user rated with
    ``freq[i, j] > 0`` (``related``), and how many such ``j`` (Surprise's ``|R_i(u)|``)."""
    n_pairs = users.shape[0]
    total = np.zeros(n_pairs, dtype=np.float64)
    count = np.zeros(n_pairs, dtype=np.int64)
    if n_pairs == 0:
        return total, count
    chunk = (n_pairs + n_tasks - 1) // n_tasks
    for task in prange(n_tasks):
        for p in range(task * chunk, min(n_pairs, (task + 1) * chunk)):
            u = users[p]
            i = items[p]
            s = 0.0
            c = 0
            for e in range(ur_indptr[u], ur_indptr[u + 1]):
                j = ur_items[e]
                if related[i, j]:
                    s += dev[i, j]
                    c += 1
            total[p] = s
            count[p] = c
    return total, count
