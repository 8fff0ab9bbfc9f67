"""The one place thread counts are set: BLAS / OpenMP pools (threadpoolctl) and numba.

A trial applies its count once, process-wide, before its adapter is built (``apply``);
everything it runs then uses that count: numpy / scipy BLAS, OpenMP loops and recbench's
numba kernels.  Adapters pass the count on only to a library with a knob of its own
(implicit's and LightFM's ``num_threads``, recbench's own ALS estimators' ``threads``).

Code that runs outside a trial (synthetic data generation, the ALS estimators used as a
library, benchmark scripts, tests) sets a count for a block with ``limited`` and gets the
previous setting back afterwards; inside a trial with the same count that changes nothing.
``blas_limited`` narrows only the BLAS pools for a block: a library that runs threads of its
own wants one BLAS thread under them, and small products are faster on one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numba
from threadpoolctl import ThreadpoolController, threadpool_limits

#: environment variables a BLAS / OpenMP runtime reads when it loads
POOL_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def numba_count(threads: int) -> int:
    """``threads`` within numba's pool (``NUMBA_NUM_THREADS``, fixed at start-up), at least 1."""
    return max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))


def apply(threads: int) -> int:
    """Set BLAS and OpenMP pools and numba to ``threads`` for the rest of this process.

    What a trial does after importing its adapter's library and before building the adapter,
    and again before its timed fit.  threadpoolctl limits only the libraries loaded at the
    time of the call; a BLAS or OpenMP runtime loaded later (scipy's OpenBLAS, a lazily
    imported library's libgomp) sizes its pool from ``POOL_ENV_VARS`` when it loads, so
    those are set to ``threads`` too (the worker starts with them at the run's largest
    count).  ``NUMBA_NUM_THREADS`` is left alone: it fixes numba's pool size at start-up.
    Returns the numba thread count in force.
    """
    for var in POOL_ENV_VARS:
        os.environ[var] = str(int(threads))
    threadpool_limits(threads)
    used = numba_count(threads)
    numba.set_num_threads(used)
    return used


@contextmanager
def limited(threads: int, *, blas: bool = True) -> Iterator[int]:
    """numba (and, with ``blas``, the BLAS / OpenMP pools) at ``threads`` for a block, then
    the previous setting; yields numba's count.

    ``blas=False`` skips threadpoolctl, whose library scan costs milliseconds, around code
    that runs numba kernels only.
    """
    used = numba_count(threads)
    previous = numba.get_num_threads()
    numba.set_num_threads(used)
    try:
        if blas:
            with threadpool_limits(limits=used):
                yield used
        else:
            yield used
    finally:
        numba.set_num_threads(previous)


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def blas_limited(threads: int, *, rescan: bool = True) -> Iterator[None]:
    """Only the BLAS pools at ``threads`` for a block, then their previous setting.

    ``rescan=False`` reuses one scan of the loaded libraries per process (a scan costs
    milliseconds): for hot paths whose BLAS (numpy's) is loaded before the first call.
    """
    controller = _controller() if not rescan else ThreadpoolController()
    with controller.limit(limits=threads, user_api="blas"):
        yield


@contextmanager
def torch_limited(threads: int) -> Iterator[None]:
    """PyTorch's own intra-op pool (its knob, ``torch.set_num_threads``) at ``threads`` for
    a block, restored afterwards (``bench.models.neural``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
