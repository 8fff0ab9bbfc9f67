"""Numba kernels of alternating least squares (explicit with biases, implicit HKV with CG).

Every half-step solves all rows (users, or items) of one side independently, so a row's
result does not depend on the thread count: the factors are deterministic for a given
input.  Rows are handed to threads in contiguous tasks holding about equal numbers of
entries (``task_bounds``), so the heavy rows of a power-law catalogue spread evenly over
static ``prange`` chunks and each task reads its slice of the CSR arrays sequentially.

Notation: a half-step updates the factors ``X`` (``n_rows x K``) of one side from the CSR
matrix of that side (``indptr``, ``indices``, ``values``) and the fixed factors ``Y`` of the
other side.  float32 throughout; accumulators are float32 too (as in implicit).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from bench.kernels.prefetch import PREFETCH_DISTANCE, prefetch_row

#: Whether the parallel fastmath kernels use numba's on-disk cache: they do not.  Code loaded
#: from the cache is not the code a fresh compilation produces (numba issue #10617 shows the
#: speed side): the same half-step gave other float32 bits in a process that compiled it
#: than in one that loaded it, so a run's numbers depended on whether ``__pycache__`` was
#: warm (NDCG@10 up to 0.05 apart for ill-conditioned settings such as ``biases=False``).
#: Every process compiles them once instead (a few seconds, outside timed fits: see
#: ``bench.trial.warm_up``), and equal inputs give equal bits in every process.
CACHE = False
#: tasks per half-step; many more than threads so the static split is balanced
N_TASKS = 256
#: rows are copied to a contiguous per-thread buffer before CG, up to this many bytes of
#: factors per thread (longer rows gather from the factor matrix on every pass)
GATHER_BYTES = 64 * 2**20


@njit(cache=True)
def task_bounds(indptr: np.ndarray, n_tasks: int) -> np.ndarray:
    """Row boundaries of ``n_tasks`` contiguous row blocks with about equal entry counts.

    Task ``t`` solves rows ``bounds[t]:bounds[t + 1]`` (some may be empty when one row
    holds more than a task's share).
    """
    n_rows = indptr.shape[0] - 1
    total = indptr[n_rows]
    bounds = np.empty(n_tasks + 1, dtype=np.int64)
    for t in range(n_tasks + 1):
        bounds[t] = np.searchsorted(indptr[:n_rows], (total * t) // n_tasks)
    bounds[0] = 0
    bounds[n_tasks] = n_rows
    return bounds


@njit(cache=True)
def _gather_capacity(indptr: np.ndarray, k: int, gather_bytes: int) -> tuple[int, int]:
    """(longest row, rows the per-thread gather buffer holds) for one half-step."""
    longest = 0
    for row in range(indptr.shape[0] - 1):
        longest = max(longest, indptr[row + 1] - indptr[row])
    return longest, min(longest, max(1, gather_bytes // (4 * k)))


@njit(cache=True, inline="always")
def _slot_tasks(slot: int, n_slots: int, n_tasks: int) -> tuple[int, int]:
    """Tasks ``[first, last)`` of scratch slot ``slot``: contiguous runs of about equal size.

    The CG kernels run ``prange(n_slots)`` and each iteration works through its own run of
    tasks with its own scratch buffer, so no two threads ever share a buffer, whatever the
    threading layer does with thread ids.
    """
    return (slot * n_tasks) // n_slots, ((slot + 1) * n_tasks) // n_slots


@njit(cache=True)
def build_csr(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counting-sort (rows, cols, values) into CSR: int64 indptr, int32 indices, f32 values.

    Linear time and no temporaries beyond the output (scipy's COO->CSR sorts and copies
    more), which matters for the 32M-rating run.  Duplicate pairs are kept as given.
    """
    n = rows.shape[0]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for k in range(n):
        indptr[rows[k] + 1] += 1
    for r in range(n_rows):
        indptr[r + 1] += indptr[r]
    fill = indptr[:-1].copy()
    indices = np.empty(n, dtype=np.int32)
    data = np.empty(n, dtype=np.float32)
    for k in range(n):
        r = rows[k]
        p = fill[r]
        indices[p] = cols[k]
        data[p] = values[k]
        fill[r] = p + 1
    return indptr, indices, data


@njit(cache=True, fastmath=True, inline="always")
def _cholesky_solve(a: np.ndarray, b: np.ndarray, d: int) -> None:
    """Solve ``a x = b`` in place (x overwrites b) for SPD ``a``; reads the upper triangle.

    Right-looking upper Cholesky ``a = U^T U`` so every inner loop runs over a contiguous
    row; ``a`` is overwritten by ``U``.
    """
    for j in range(d):
        pivot = np.sqrt(a[j, j])
        a[j, j] = pivot
        inv = np.float32(1.0) / pivot
        for c in range(j + 1, d):
            a[j, c] *= inv
        for r in range(j + 1, d):
            ujr = a[j, r]
            for c in range(r, d):
                a[r, c] -= ujr * a[j, c]
    # forward: U^T y = b
    for j in range(d):
        b[j] /= a[j, j]
        yj = b[j]
        for c in range(j + 1, d):
            b[c] -= a[j, c] * yj
    # backward: U x = y
    for j in range(d - 1, -1, -1):
        s = b[j]
        for c in range(j + 1, d):
            s -= a[j, c] * b[c]
        b[j] = s / a[j, j]


@njit(cache=CACHE, parallel=True, fastmath=True)
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
            _cholesky_solve(a, b, d)
            out_bias[row] = b[0]
            for f in range(k):
                out_factors[row, f] = b[f + 1]


@njit(cache=True, inline="always")
def _fetch_row(
    other_factors: np.ndarray,
    indices: np.ndarray,
    q: int,
    task_end: int,
    buffer: np.ndarray,
    j: int,
    gather: bool,
) -> np.ndarray:
    """Factor row of entry ``q`` (copied to ``buffer[j]`` when ``gather``).

    Prefetches the row of entry ``q + PREFETCH_DISTANCE`` while it is inside the task's
    slice, so the next rows' first reads start early too.
    """
    if q + PREFETCH_DISTANCE < task_end:
        prefetch_row(other_factors, indices[q + PREFETCH_DISTANCE])
    y = other_factors[indices[q]]
    if gather:
        for f in range(y.shape[0]):
            buffer[j, f] = y[f]
    return y


@njit(cache=True, fastmath=True, inline="always")
def _explicit_residual_init(
    lam_b: float, lam_f: float, prior_row: np.ndarray, x: np.ndarray, r: np.ndarray
) -> None:
    """``r = b - A x`` before any rating: the penalty terms (``prior_row`` empty: none)."""
    k = x.shape[0] - 1
    r[0] = -lam_b * x[0]
    for f in range(k):
        r[f + 1] = -lam_f * x[f + 1]
        if prior_row.shape[0] > 0:
            r[f + 1] += lam_f * prior_row[f]


@njit(cache=True, fastmath=True, inline="always")
def _explicit_residual_add(y: np.ndarray, target: float, x: np.ndarray, r: np.ndarray) -> None:
    """Add one rating (design ``[1, y]``, ``target``) to the residual ``r = b - A x``."""
    k = y.shape[0]
    t = target - x[0]
    for f in range(k):
        t -= y[f] * x[f + 1]
    r[0] += t
    for f in range(k):
        r[f + 1] += t * y[f]


@njit(cache=True, fastmath=True, inline="always")
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
    n = rows.shape[0]
    rs_old = np.float32(0.0)
    for f in range(k + 1):
        p[f] = r[f]
        rs_old += r[f] * r[f]
    if rs_old < 1e-20:
        return
    for _ in range(cg_steps):
        ap[0] = lam_b * p[0]
        for f in range(k):
            ap[f + 1] = lam_f * p[f + 1]
        for j in range(n):
            y = ys[rows[j]]
            zp = p[0]
            for f in range(k):
                zp += y[f] * p[f + 1]
            ap[0] += zp
            for f in range(k):
                ap[f + 1] += zp * y[f]
        pap = np.float32(0.0)
        for f in range(k + 1):
            pap += p[f] * ap[f]
        step = rs_old / pap
        rs_new = np.float32(0.0)
        for f in range(k + 1):
            x[f] += step * p[f]
            r[f] -= step * ap[f]
            rs_new += r[f] * r[f]
        if rs_new < 1e-20:
            break
        beta = rs_new / rs_old
        for f in range(k + 1):
            p[f] = r[f] + beta * p[f]
        rs_old = rs_new


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
    loss still never increases.  Each row's factors are first copied into a contiguous
    per-thread buffer (up to ``gather_bytes`` per thread), so the CG passes after the first read
    sequential memory instead of gathering scattered factor rows again.
    """
    _explicit_cg(indptr, indices, values, other_factors, other_bias, global_mean, reg_factors,
                 reg_bias, prior, factors, bias, cg_steps, gather_bytes,
                 numba.get_num_threads())  # fmt: skip


@njit(cache=CACHE, parallel=True, fastmath=True)
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
    _, capacity = _gather_capacity(indptr, k, gather_bytes)
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
        first, last = _slot_tasks(slot, n_slots, n_tasks)
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
                prior_row = prior[row] if has_prior else prior[0:0, 0]
                _explicit_residual_init(lam_b, lam_f, prior_row, x, r)
                # one pass gathers the rows (when they fit) and forms the residual
                gather = n <= capacity
                for j in range(n):
                    y = _fetch_row(other_factors, indices, start + j, task_end, buffer, j, gather)
                    target = values[start + j] - global_mean - other_bias[indices[start + j]]
                    _explicit_residual_add(y, target, x, r)
                if gather:
                    _explicit_cg_steps(buffer, identity[:n], lam_b, lam_f, x, r, p, ap, cg_steps)
                else:
                    _explicit_cg_steps(other_factors, indices[start:end], lam_b, lam_f, x, r, p,
                                       ap, cg_steps)  # fmt: skip
                bias[row] = x[0]
                for f in range(k):
                    factors[row, f] = x[f + 1]


@njit(cache=CACHE, parallel=True, fastmath=True)
def gram(factors: np.ndarray, reg: float) -> np.ndarray:
    """``Y^T Y + reg I`` (float32), summed over fixed row blocks so it is deterministic.

    In numba rather than BLAS: BLAS threads and numba's OpenMP threads spin-wait against
    each other on a small machine, which cost more than the product itself.
    """
    n = factors.shape[0]
    k = factors.shape[1]
    n_tasks = min(N_TASKS, max(n, 1))
    partial = np.zeros((n_tasks, k, k), dtype=np.float32)
    block = (n + n_tasks - 1) // n_tasks
    for task in prange(n_tasks):
        acc = partial[task]
        for row in range(task * block, min(n, (task + 1) * block)):
            y = factors[row]
            for r in range(k):
                yr = y[r]
                for c in range(k):
                    acc[r, c] += yr * y[c]
    out = np.zeros((k, k), dtype=np.float64)
    for task in range(n_tasks):
        for r in range(k):
            for c in range(k):
                out[r, c] += partial[task, r, c]
    result = out.astype(np.float32)
    for r in range(k):
        result[r, r] += reg
    return result


@njit(cache=CACHE, parallel=True, fastmath=True)
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
    total = 0.0
    for row in prange(n_rows):
        s = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            i = indices[p]
            pred = global_mean + row_bias[row] + col_bias[i]
            for f in range(k):
                pred += row_factors[row, f] * col_factors[i, f]
            e = values[p] - pred
            s += e * e
        total += s
    return total


@njit(cache=CACHE, parallel=True, fastmath=True)
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
    k = user_factors.shape[1]
    out = np.empty(n, dtype=np.float32)
    for j in prange(n):
        u = users[j]
        i = items[j]
        s = np.float32(global_mean) + user_bias[u] + item_bias[i]
        for f in range(k):
            s += user_factors[u, f] * item_factors[i, f]
        out[j] = s
    return out


@njit(cache=True, fastmath=True, inline="always")
def _implicit_residual_init(gram: np.ndarray, x: np.ndarray, r: np.ndarray) -> None:
    """``r = b - A x`` before any entry: ``-gram x``."""
    k = x.shape[0]
    for a in range(k):
        s = np.float32(0.0)
        for c in range(k):
            s += gram[a, c] * x[c]
        r[a] = -s


@njit(cache=True, fastmath=True, inline="always")
def _implicit_residual_add(y: np.ndarray, conf: float, x: np.ndarray, r: np.ndarray) -> None:
    """Add one stored entry (factor ``y``, confidence ``conf``, preference 1) to ``r``."""
    k = y.shape[0]
    yx = np.float32(0.0)
    for f in range(k):
        yx += y[f] * x[f]
    t = conf - (conf - np.float32(1.0)) * yx
    for f in range(k):
        r[f] += t * y[f]


@njit(cache=True, fastmath=True, inline="always")
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
    n = rows.shape[0]
    rs_old = np.float32(0.0)
    for f in range(k):
        p[f] = r[f]
        rs_old += r[f] * r[f]
    if rs_old < 1e-20:
        return
    for _ in range(cg_steps):
        for a in range(k):
            s = np.float32(0.0)
            for c in range(k):
                s += gram[a, c] * p[c]
            ap[a] = s
        for j in range(n):
            y = ys[rows[j]]
            yp = np.float32(0.0)
            for f in range(k):
                yp += y[f] * p[f]
            t = (confidence[j] - np.float32(1.0)) * yp
            for f in range(k):
                ap[f] += t * y[f]
        pap = np.float32(0.0)
        for f in range(k):
            pap += p[f] * ap[f]
        step = rs_old / pap
        rs_new = np.float32(0.0)
        for f in range(k):
            x[f] += step * p[f]
            r[f] -= step * ap[f]
            rs_new += r[f] * r[f]
        if rs_new < 1e-20:
            break
        beta = rs_new / rs_old
        for f in range(k):
            p[f] = r[f] + beta * p[f]
        rs_old = rs_new


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

    Row ``u`` solves ``(Y^T Y + reg I + sum_i (c_ui - 1) y_i y_i^T) x = sum_i c_ui y_i``
    (preference 1 on stored entries, confidence 1 elsewhere); ``gram`` is ``Y^T Y + reg I``.
    Warm-started from the current ``factors`` and with the same steps and stopping rule as
    implicit's ``_least_squares_cg``, so both do the same arithmetic.  Rows with no
    entries are 0.  Rows are gathered into a contiguous per-thread buffer first (see
    ``explicit_cg_halfstep``).
    """
    _implicit_cg(indptr, indices, confidence, gram, other_factors, factors, cg_steps,
                 gather_bytes, numba.get_num_threads())  # fmt: skip


@njit(cache=CACHE, parallel=True, fastmath=True)
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
    _, capacity = _gather_capacity(indptr, k, gather_bytes)
    buffers = np.empty((n_slots, capacity, k), dtype=np.float32)  # see _explicit_cg
    identity = np.arange(capacity).astype(np.int32)
    for slot in prange(n_slots):
        buffer = buffers[slot]
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        ap = np.empty(k, dtype=np.float32)
        first, last = _slot_tasks(slot, n_slots, n_tasks)
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
                _implicit_residual_init(gram, x, r)
                # one pass gathers the rows (when they fit) and forms the residual
                gather = n <= capacity
                for j in range(n):
                    y = _fetch_row(other_factors, indices, start + j, task_end, buffer, j, gather)
                    _implicit_residual_add(y, conf[j], x, r)
                if gather:
                    _implicit_cg_steps(buffer, identity[:n], conf, gram, x, r, p, ap, cg_steps)
                else:
                    _implicit_cg_steps(other_factors, indices[start:end], conf, gram, x, r, p,
                                       ap, cg_steps)  # fmt: skip


@njit(cache=CACHE, parallel=True, fastmath=True)
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
            _cholesky_solve(a, b, k)
            for f in range(k):
                factors[row, f] = b[f]


@njit(cache=CACHE, parallel=True, fastmath=True)
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
    total = 0.0
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
        total += s
    return total

