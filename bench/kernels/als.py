"""ALS kernels in numba: the names the models use, from three modules.

``als_core`` (task layout, fixed-order sums, gathers, Gram, Cholesky: why every kernel
gives the same bits on any x86 CPU and at any thread count), ``als_explicit`` (ratings with
biases) and ``als_implicit`` (Hu-Koren-Volinsky confidence weights).
"""

from bench.kernels.als_core import FASTMATH, GATHER_BYTES, N_TASKS, build_csr, gram, task_bounds
from bench.kernels.als_explicit import (
    explicit_cg_halfstep,
    explicit_halfstep,
    explicit_squared_error,
    predict_pairs,
)
from bench.kernels.als_implicit import (
    implicit_cg_halfstep,
    implicit_cholesky_halfstep,
    implicit_loss_terms,
)

__all__ = [
    "FASTMATH",
    "GATHER_BYTES",
    "N_TASKS",
    "build_csr",
    "explicit_cg_halfstep",
    "explicit_halfstep",
    "explicit_squared_error",
    "gram",
    "implicit_cg_halfstep",
    "implicit_cholesky_halfstep",
    "implicit_loss_terms",
    "predict_pairs",
    "task_bounds",
]
