"""Explicit-feedback ALS kernels: ratings with user and item biases.

A half-step solves, for every row ``u`` of one side, ``min sum_i (r_ui - mu - b_i - b_u -
x_u.y_i)^2 + reg_bias[u] b_u^2 + reg_factors[u] |x_u - prior_u|^2`` given the other side,
exactly (``explicit_halfstep``, normal equations and Cholesky) or by a few warm-started
conjugate-gradient steps (``explicit_cg_halfstep``).  Arithmetic is in a fixed order: see
``bench.kernels.als_core``.
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
    slot_tasks,
    sum_in_order,
    task_bounds,
)


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def explicit_halfstep(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    global_mean: float,
    reg_factors: np.ndarray,
    reg_bias: np.ndarray,
    prior: np.ndarray,
    out_factors: np.ndarray,
    out_bias: np.ndarray,
) -> None:
    """Exact least squares for every row's ``(bias, factors)`` given the other side.

    Row ``u`` minimises ``sum_i (r_ui - mu - b_i - b_u - x_u.y_i)^2 + reg_bias[u] b_u^2 +
    reg_factors[u] |x_u - prior_u|^2`` (``prior`` has 0 rows when there is none, i.e. 0):
    the normal equations over ``z = [b_u, x_u]`` with design rows ``[1, y_i]``.  The
    ``y y^T`` block is accumulated apart from the bias row so that its inner loop has
    length K (a multiple of the SIMD width for the usual K), not K + 1.
    """
    n_rows = out_factors.shape[0]
    k = out_factors.shape[1]
    d = k + 1
    has_prior = prior.shape[0] > 0
    n_tasks = min(N_TASKS, n_rows)
    bounds = task_bounds(indptr, n_tasks)
    for task in prange(n_tasks):
        yy = np.empty((k, k), dtype=np.float32)
        y_sum = np.empty(k, dtype=np.float32)
        ty = np.empty(k, dtype=np.float32)
        a = np.empty((d, d), dtype=np.float32)
        b = np.empty(d, dtype=np.float32)
        for row in range(bounds[task], bounds[task + 1]):
            start = indptr[row]
            end = indptr[row + 1]
            yy[:, :] = 0.0
            y_sum[:] = 0.0
            ty[:] = 0.0
            t_sum = np.float32(0.0)
            for p in range(start, end):
                i = indices[p]
                y = other_factors[i]
                target = values[p] - global_mean - other_bias[i]
                t_sum += target
                for r in range(k):
                    yr = y[r]
                    y_sum[r] += yr
                    ty[r] += target * yr
                    for c in range(k):
                        yy[r, c] += yr * y[c]
            lam_f = reg_factors[row]
            a[0, 0] = np.float32(end - start) + reg_bias[row]
            b[0] = t_sum
            for r in range(k):
                a[0, r + 1] = y_sum[r]
                b[r + 1] = ty[r]
                if has_prior:
                    b[r + 1] += lam_f * prior[row, r]
                for c in range(r, k):
                    a[r + 1, c + 1] = yy[r, c]
                a[r + 1, r + 1] += lam_f
            if a[0, 0] <= 0.0:  # no ratings and no bias penalty: keep the row at its prior
                out_bias[row] = 0.0
                for f in range(k):
                    out_factors[row, f] = prior[row, f] if has_prior else 0.0
                continue
            cholesky_solve(a, b, d)
            out_bias[row] = b[0]
            for f in range(k):
                out_factors[row, f] = b[f + 1]


def explicit_cg_halfstep(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    global_mean: float,
    reg_factors: np.ndarray,
    reg_bias: np.ndarray,
    prior: np.ndarray,
    factors: np.ndarray,
    bias: np.ndarray,
    cg_steps: int,
    gather_bytes: int = GATHER_BYTES,
) -> None:
    """The system of ``explicit_halfstep`` by ``cg_steps`` conjugate-gradient steps per row.

    Warm-started from the current ``(bias, factors)``; each step costs ``2 (K + 1)`` per
    rating instead of the ``K^2`` of forming the normal equations, and needs no
    factorisation.  CG never increases the row's quadratic objective, so the training
    loss still never increases.  A row's factor rows are gathered into per-slot buffers
    (``gather_bytes`` per slot; longer rows in chunks, the same bits).
    """
    _explicit_cg(indptr, indices, values, other_factors, other_bias, global_mean, reg_factors,
                 reg_bias, prior, factors, bias, cg_steps, gather_bytes,
                 numba.get_num_threads())  # fmt: skip


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def _explicit_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    global_mean: float,
    reg_factors: np.ndarray,
    reg_bias: np.ndarray,
    prior: np.ndarray,
    factors: np.ndarray,
    bias: np.ndarray,
    cg_steps: int,
    gather_bytes: int,
    n_slots: int,
) -> None:
    # n_slots comes from Python: numba.get_num_threads() inside njit defeats cache=True
    n_rows = factors.shape[0]
    k = factors.shape[1]
    has_prior = prior.shape[0] > 0
    n_tasks = min(N_TASKS, n_rows)
    bounds = task_bounds(indptr, n_tasks)
    capacity = gather_capacity(indptr, k, gather_bytes)
    # scratch allocated once per call (fresh pages per task cost more than CG), one slot
    # per parallel iteration: a slot is owned by its iteration, never looked up by thread id
    buffers = np.empty((n_slots, capacity, k), dtype=np.float32)
    identity = np.arange(capacity).astype(np.int32)
    for slot in prange(n_slots):
        buffer = buffers[slot]
        # index 0 is the bias, 1..k the factors
        x = np.empty(k + 1, dtype=np.float32)
        r = np.empty(k + 1, dtype=np.float32)
        p = np.empty(k + 1, dtype=np.float32)
        ap = np.empty(k + 1, dtype=np.float32)
        first, last = slot_tasks(slot, n_slots, n_tasks)
        for task in range(first, last):
            task_end = indptr[bounds[task + 1]]
            for row in range(bounds[task], bounds[task + 1]):
                start = indptr[row]
                end = indptr[row + 1]
                n = end - start
                if n == 0:  # the solution with no ratings: bias 0, factors at the prior
                    bias[row] = 0.0
                    for f in range(k):
                        factors[row, f] = prior[row, f] if has_prior else 0.0
                    continue
                x[0] = bias[row]
                for f in range(k):
                    x[f + 1] = factors[row, f]
                lam_b = reg_bias[row]
                lam_f = reg_factors[row]
                # residual r = b - A x: the penalty terms, then each rating (design [1, y])
                r[0] = -lam_b * x[0]
                for f in range(k):
                    r[f + 1] = -lam_f * x[f + 1]
                    if has_prior:
                        r[f + 1] += lam_f * prior[row, f]
                # one pass gathers the rows (when they fit) and forms the residual
                gather = n <= capacity
                for j in range(n):
                    y = fetch_row(other_factors, indices, start + j, task_end, buffer, j, gather)
                    target = values[start + j] - global_mean - other_bias[indices[start + j]]
                    t = (target - x[0]) - dot(y, x[1:])
                    r[0] += t
                    axpy(t, y, r[1:])
                if gather:
                    _explicit_cg_steps(buffer, identity[:n], lam_b, lam_f, x, r, p, ap, cg_steps)
                else:
                    _explicit_cg_steps(other_factors, indices[start:end], lam_b, lam_f, x, r, p,
                                       ap, cg_steps)  # fmt: skip
                bias[row] = x[0]
                for f in range(k):
                    factors[row, f] = x[f + 1]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _explicit_cg_steps(
    ys: np.ndarray,
    rows: np.ndarray,
    lam_b: float,
    lam_f: float,
    x: np.ndarray,
    r: np.ndarray,
    p: np.ndarray,
    ap: np.ndarray,
    cg_steps: int,
) -> None:
    """CG on one row from its residual ``r``: entry ``j`` has design ``[1, ys[rows[j]]]``.

    ``x`` (``[b, p...]``) is updated in place.
    """
    k = ys.shape[1]
    for f in range(k + 1):
        p[f] = r[f]
    rs_old = dot(r, r)
    if rs_old < 1e-20:
        return
    for _ in range(cg_steps):
        ap[0] = lam_b * p[0]
        for f in range(k):
            ap[f + 1] = lam_f * p[f + 1]
        for j in range(rows.shape[0]):
            y = ys[rows[j]]
            zp = p[0] + dot(y, p[1:])
            ap[0] += zp
            axpy(zp, y, ap[1:])
        step = rs_old / dot(p, ap)
        axpy(step, p, x)
        axpy(-step, ap, r)
        rs_new = dot(r, r)
        if rs_new < 1e-20:
            break
        beta = rs_new / rs_old
        for f in range(k + 1):
            p[f] = r[f] + beta * p[f]
        rs_old = rs_new


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def explicit_squared_error(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    row_factors: np.ndarray,
    row_bias: np.ndarray,
    col_factors: np.ndarray,
    col_bias: np.ndarray,
    global_mean: float,
) -> float:
    """Sum of squared errors of ``mu + b_u + b_i + x_u.y_i`` over the stored ratings."""
    n_rows = row_factors.shape[0]
    k = row_factors.shape[1]
    per_row = np.empty(n_rows, dtype=np.float64)
    for row in prange(n_rows):
        s = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            i = indices[p]
            pred = global_mean + row_bias[row] + col_bias[i]
            for f in range(k):
                pred += row_factors[row, f] * col_factors[i, f]
            e = values[p] - pred
            s += e * e
        per_row[row] = s
    return sum_in_order(per_row)


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
def predict_pairs(
    users: np.ndarray,
    items: np.ndarray,
    user_factors: np.ndarray,
    user_bias: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
) -> np.ndarray:
    """``mu + b_u + b_i + x_u.y_i`` for each (user, item) pair, float32."""
    n = users.shape[0]
    out = np.empty(n, dtype=np.float32)
    for j in prange(n):
        u = users[j]
        i = items[j]
        out[j] = (np.float32(global_mean) + user_bias[u] + item_bias[i]) + dot(
            user_factors[u], item_factors[i]
        )
    return out
