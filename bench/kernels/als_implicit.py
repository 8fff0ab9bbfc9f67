"""Implicit-feedback ALS kernels (Hu, Koren and Volinsky 2008).

A half-step solves, for every row ``u`` of one side, ``(Y^T Y + reg I + sum_i (c_ui - 1)
y_i y_i^T) x_u = sum_i c_ui y_i`` (preference 1 on stored entries, confidence 1 elsewhere)
by warm-started conjugate-gradient steps (``implicit_cg_halfstep``, the steps and stopping
rule of implicit's ``_least_squares_cg``) or exactly (``implicit_cholesky_halfstep``, for
checking CG).  Arithmetic is in a fixed order: see ``bench.kernels.als_core``.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from bench.kernels.als_core import (
    CACHE,
    FASTMATH,
    GATHER_BYTES,
    N_TASKS,
    axpy,
    cholesky_solve,
    dot,
    fetch_row,
    gather_capacity,
    matrix_times,
    slot_tasks,
    sum_in_order,
    task_bounds,
)


def implicit_cg_halfstep(
    indptr: np.ndarray,
    indices: np.ndarray,
    confidence: np.ndarray,
    gram: np.ndarray,
    other_factors: np.ndarray,
    factors: np.ndarray,
    cg_steps: int,
    gather_bytes: int = GATHER_BYTES,
) -> None:
    """Hu-Koren-Volinsky half-step by ``cg_steps`` conjugate-gradient steps per row.

    ``gram`` is the symmetric ``Y^T Y + reg I`` (``bench.kernels.als_core.gram``).
    Warm-started from the current ``factors``; rows with no entries are 0.  A row's factor
    rows are gathered into per-slot buffers (``gather_bytes`` per slot; longer rows in
    chunks, the same bits).
    """
    _implicit_cg(indptr, indices, confidence, gram, other_factors, factors, cg_steps,
                 gather_bytes, numba.get_num_threads())  # fmt: skip


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def _implicit_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    confidence: np.ndarray,
    gram: np.ndarray,
    other_factors: np.ndarray,
    factors: np.ndarray,
    cg_steps: int,
    gather_bytes: int,
    n_slots: int,
) -> None:
    n_rows = factors.shape[0]
    k = factors.shape[1]
    n_tasks = min(N_TASKS, n_rows)
    bounds = task_bounds(indptr, n_tasks)
    capacity = gather_capacity(indptr, k, gather_bytes)
    buffers = np.empty((n_slots, capacity, k), dtype=np.float32)  # see _explicit_cg
    identity = np.arange(capacity).astype(np.int32)
    for slot in prange(n_slots):
        buffer = buffers[slot]
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        ap = np.empty(k, dtype=np.float32)
        first, last = slot_tasks(slot, n_slots, n_tasks)
        for task in range(first, last):
            task_end = indptr[bounds[task + 1]]
            for row in range(bounds[task], bounds[task + 1]):
                start = indptr[row]
                end = indptr[row + 1]
                n = end - start
                if n == 0:
                    factors[row, :] = 0.0
                    continue
                x = factors[row]
                conf = confidence[start:end]
                # residual r = b - A x = -gram x + sum_i (c_i - (c_i - 1) y_i.x) y_i
                matrix_times(gram, x, r)
                for f in range(k):
                    r[f] = -r[f]
                # one pass gathers the rows (when they fit) and forms the residual
                gather = n <= capacity
                for j in range(n):
                    y = fetch_row(other_factors, indices, start + j, task_end, buffer, j, gather)
                    axpy(conf[j] - (conf[j] - np.float32(1.0)) * dot(y, x), y, r)
                if gather:
                    _implicit_cg_steps(buffer, identity[:n], conf, gram, x, r, p, ap, cg_steps)
                else:
                    _implicit_cg_steps(other_factors, indices[start:end], conf, gram, x, r, p,
                                       ap, cg_steps)  # fmt: skip


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _implicit_cg_steps(
    ys: np.ndarray,
    rows: np.ndarray,
    confidence: np.ndarray,
    gram: np.ndarray,
    x: np.ndarray,
    r: np.ndarray,
    p: np.ndarray,
    ap: np.ndarray,
    cg_steps: int,
) -> None:
    """CG on one row from its residual ``r``: entry ``j`` has factor ``ys[rows[j]]``."""
    k = ys.shape[1]
    for f in range(k):
        p[f] = r[f]
    rs_old = dot(r, r)
    if rs_old < 1e-20:
        return
    for _ in range(cg_steps):
        matrix_times(gram, p, ap)
        for j in range(rows.shape[0]):
            y = ys[rows[j]]
            axpy((confidence[j] - np.float32(1.0)) * dot(y, p), y, ap)
        step = rs_old / dot(p, ap)
        axpy(step, p, x)
        axpy(-step, ap, r)
        rs_new = dot(r, r)
        if rs_new < 1e-20:
            break
        beta = rs_new / rs_old
        for f in range(k):
            p[f] = r[f] + beta * p[f]
        rs_old = rs_new


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def implicit_cholesky_halfstep(
    indptr: np.ndarray,
    indices: np.ndarray,
    confidence: np.ndarray,
    gram: np.ndarray,
    other_factors: np.ndarray,
    factors: np.ndarray,
) -> None:
    """The same system as ``implicit_cg_halfstep`` solved exactly (for checking CG)."""
    n_rows = factors.shape[0]
    k = factors.shape[1]
    n_tasks = min(N_TASKS, n_rows)
    bounds = task_bounds(indptr, n_tasks)
    for task in prange(n_tasks):
        a = np.empty((k, k), dtype=np.float32)
        b = np.empty(k, dtype=np.float32)
        for row in range(bounds[task], bounds[task + 1]):
            start = indptr[row]
            end = indptr[row + 1]
            if start == end:
                factors[row, :] = 0.0
                continue
            a[:, :] = gram
            b[:] = 0.0
            for q in range(start, end):
                i = indices[q]
                conf = confidence[q]
                w = conf - np.float32(1.0)
                for r in range(k):
                    yr = other_factors[i, r]
                    b[r] += conf * yr
                    wyr = w * yr
                    for c in range(r, k):
                        a[r, c] += wyr * other_factors[i, c]
            cholesky_solve(a, b, k)
            for f in range(k):
                factors[row, f] = b[f]


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def implicit_loss_terms(
    indptr: np.ndarray,
    indices: np.ndarray,
    confidence: np.ndarray,
    gram_plain: np.ndarray,
    row_factors: np.ndarray,
    col_factors: np.ndarray,
) -> float:
    """``sum_ui c_ui (p_ui - x_u.y_i)^2`` over all pairs (c = 1, p = 0 off the stored entries).

    Uses ``x^T (Y^T Y) x + sum_stored [(c - 1)(y.x)^2 - 2 c (y.x) + c]`` so the dense
    matrix is never formed; ``gram_plain`` is ``Y^T Y`` without regularisation.
    """
    n_rows = row_factors.shape[0]
    k = row_factors.shape[1]
    per_row = np.empty(n_rows, dtype=np.float64)
    for row in prange(n_rows):
        x = row_factors[row]
        s = 0.0
        for a in range(k):
            t = 0.0
            for c in range(k):
                t += gram_plain[a, c] * x[c]
            s += t * x[a]
        for q in range(indptr[row], indptr[row + 1]):
            i = indices[q]
            conf = confidence[q]
            yx = 0.0
            for f in range(k):
                yx += col_factors[i, f] * x[f]
            s += (conf - 1.0) * yx * yx - 2.0 * conf * yx + conf
        per_row[row] = s
    return sum_in_order(per_row)
