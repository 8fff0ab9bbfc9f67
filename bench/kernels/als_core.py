"""Shared pieces of the ALS kernels: task layout, fixed-order sums, gathers, Gram, Cholesky.

**Same bits on any machine.**  Every ALS kernel is compiled without fast-math
(``FASTMATH``): no reassociation and no fused multiply-add contraction, so LLVM can neither
reorder a sum nor fuse a product into an addition, and each float32 operation is the
IEEE-754 one.  A result then does not depend on the vector width (AVX-512 on a Xeon, AVX2
on an EPYC), on the thread or slot that computes a row, on the thread count, or on where
``malloc`` put a thread's scratch.  (With reassociation allowed, LLVM's vector loops summed
in another order than the scalar loops they fall back to when two arrays lie close in
memory, so the bits of a half-step depended on the addresses of a thread's scratch: 1 in 6
CG values moved by an ulp between 1 and 2 threads on AVX2 machines.)

Speed without reassociation comes from writing the vector code out: ``dot`` is eight
partial sums held in one LLVM vector (``fma`` lane by lane, then a fixed tree), and the
updates ``y += a x`` are element-wise ``fma`` loops, which vectorise without changing any
lane's arithmetic.  Sums over rows (``gram``, the losses) add fixed blocks in a fixed order.
``tests/test_kernel_determinism.py`` compiles the kernels for other CPUs (``NUMBA_CPU_NAME``)
and varies threads, slots, buffer sizes and input alignment.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from bench.kernels.prefetch import PREFETCH_DISTANCE, prefetch_row

#: no fast-math flags (numba's default, spelled out so that a speed edit changes it visibly)
FASTMATH = False
#: Whether the parallel kernels use numba's on-disk cache: they do not.  Every process
#: compiles them once instead (a few seconds, outside timed fits: see
#: ``bench.execution.trial.warm_up``).
CACHE = False
#: independent partial sums of ``dot`` (one 256-bit vector of float32)
LANES = 8
#: tasks per half-step; many more than threads so the static split is balanced
N_TASKS = 256
#: bytes of gathered factor rows per slot; longer rows read the factor table on every pass
GATHER_BYTES = 64 * 2**20


@intrinsic
def fma(typingctx, a, b, c):  # noqa: ARG001 (numba's intrinsic signature)
    """``a * b + c`` rounded once (float32), as ``llvm.fma``: the same bits on every CPU.

    Not fast-math contraction, which fuses where the back end likes and only on CPUs with
    FMA: the fused operation is written where it is meant, vectorises (``vfmadd``), and
    is emulated exactly on a CPU without it.
    """
    if not (a == types.float32 and b == types.float32 and c == types.float32):
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(f32, [f32, f32, f32]), "llvm.fma.f32"
        )
        return builder.call(fn, list(args))

    return types.float32(types.float32, types.float32, types.float32), codegen


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
def gather_capacity(indptr: np.ndarray, k: int, gather_bytes: int) -> int:
    """Entries a slot's gather buffer holds: the longest row, at most ``gather_bytes``."""
    longest = 0
    for row in range(indptr.shape[0] - 1):
        longest = max(longest, indptr[row + 1] - indptr[row])
    return max(1, min(longest, gather_bytes // (4 * k)))


@njit(cache=True, inline="always")
def slot_tasks(slot: int, n_slots: int, n_tasks: int) -> tuple[int, int]:
    """Tasks ``[first, last)`` of scratch slot ``slot``: contiguous runs of about equal size.

    The CG kernels run ``prange(n_slots)`` and each iteration works through its own run of
    tasks with its own scratch buffer, so no two threads ever share a buffer, whatever the
    threading layer does with thread ids.
    """
    return (slot * n_tasks) // n_slots, ((slot + 1) * n_tasks) // n_slots


@intrinsic
def dot(typingctx, a, b):  # noqa: ARG001 (numba's intrinsic signature)
    """``a . b`` for 1-d C-contiguous float32 arrays of one length: ``LANES`` partial sums.

    Written as LLVM vector operations, so the order is the one written whatever the CPU:
    lane ``l`` accumulates ``fma(a[f], b[f], acc[l])`` for ``f = l, l + 8, ...`` in
    increasing ``f`` (the tail past the last multiple of 8 into the first lanes), then the
    lanes are added as ``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``.  One 256-bit
    vector on AVX2 and AVX-512 CPUs alike; exact (if slower) on any other.
    """
    ok = all(
        isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" and t.dtype == types.float32
        for t in (a, b)
    )
    if not ok:
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        vec = ir.VectorType(f32, LANES)
        i64 = ir.IntType(64)
        va = context.make_array(signature.args[0])(context, builder, args[0])
        vb = context.make_array(signature.args[1])(context, builder, args[1])
        n = builder.extract_value(va.shape, 0)
        fma_v = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{LANES}f32"
        )
        fma_s = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(f32, [f32, f32, f32]), "llvm.fma.f32"
        )
        acc = cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * LANES))
        blocks = builder.udiv(n, ir.Constant(n.type, LANES))
        with cgutils.for_range(builder, blocks) as loop:
            offset = builder.mul(loop.index, ir.Constant(loop.index.type, LANES))
            loaded = []
            for view in (va, vb):
                ptr = builder.gep(view.data, [offset])
                loaded.append(builder.load(builder.bitcast(ptr, vec.as_pointer()), align=4))
            builder.store(builder.call(fma_v, [*loaded, builder.load(acc)]), acc)
        full = builder.mul(blocks, ir.Constant(n.type, LANES))
        with cgutils.for_range(builder, builder.sub(n, full)) as loop:
            pos = builder.add(full, loop.index)
            xa = builder.load(builder.gep(va.data, [pos]))
            xb = builder.load(builder.gep(vb.data, [pos]))
            lane = builder.trunc(loop.index, ir.IntType(32))
            current = builder.load(acc)
            summed = builder.call(fma_s, [xa, xb, builder.extract_element(current, lane)])
            builder.store(builder.insert_element(current, summed, lane), acc)
        total = builder.load(acc)
        lanes = [builder.extract_element(total, ir.Constant(i64, lane)) for lane in range(LANES)]
        while len(lanes) > 1:
            lanes = [builder.fadd(lanes[q], lanes[q + 1]) for q in range(0, len(lanes), 2)]
        return lanes[0]

    return types.float32(a, b), codegen


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


@njit(cache=True, fastmath=FASTMATH, inline="always")
def cholesky_solve(a: np.ndarray, b: np.ndarray, d: int) -> None:
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


@njit(cache=True, inline="always")
def fetch_row(
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


@njit(cache=True, fastmath=FASTMATH, inline="always")
def axpy(alpha: np.float32, x: np.ndarray, y: np.ndarray) -> None:
    """``y += alpha x`` element-wise, one ``fma`` each (vectorises; the same bits)."""
    for f in range(y.shape[0]):
        y[f] = fma(alpha, x[f], y[f])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def matrix_times(a: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """``out[f] = a[f] . v`` (``dot`` of each row)."""
    for f in range(out.shape[0]):
        out[f] = dot(a[f], v)


@njit(cache=CACHE, parallel=True, fastmath=FASTMATH)
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


@njit(cache=True, fastmath=FASTMATH)
def sum_in_order(values: np.ndarray) -> float:
    """Sequential sum (a ``prange`` reduction would add per-thread partials: thread-count
    dependent)."""
    total = 0.0
    for v in values:
        total += v
    return total
