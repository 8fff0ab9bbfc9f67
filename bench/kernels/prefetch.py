"""Software prefetch for numba kernels that gather rows of a large table.

Gathering factor rows ``Y[indices[j]]`` from a table bigger than the caches is bound by
memory latency: the out-of-order core keeps only a few row reads in flight.  Asking for
the row needed ``PREFETCH_DISTANCE`` entries ahead overlaps those reads; on the 2-core
VM of ``results/als_scaling.md`` it halves the time of the gather at K=32.

numba's on-disk cache keys a kernel on its own source file only: after editing this module,
delete ``bench/kernels/__pycache__`` so that the cached kernels of ``als.py`` are rebuilt.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: how many entries ahead a gather loop asks for its row
PREFETCH_DISTANCE = 16
_LINE_FLOATS = 16  # float32 values per 64-byte cache line


@intrinsic
def _prefetch(typingctx, array, index):  # noqa: ARG001 (numba's intrinsic signature)
    """Hint the cache line holding ``array[index]`` (1-d) into every cache level, no fault."""

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        view = context.make_array(array_type)(context, builder, args[0])
        position = [context.cast(builder, args[1], index_type, types.intp)]
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, position, wraparound=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )
        # read, locality 3 (keep in all levels), data cache
        builder.call(fn, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@njit(inline="always")
def prefetch_row(table, row) -> None:  # noqa: ANN001 (numba types)
    """Prefetch every cache line of ``table[row]`` (a C-contiguous 2-d float32 table)."""
    values = table[row]
    k = values.shape[0]
    for col in range(0, k, _LINE_FLOATS):
        _prefetch(values, col)
    _prefetch(values, k - 1)  # the row need not start on a line boundary

