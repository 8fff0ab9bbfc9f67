"""The ALS kernels give the same bits on any x86 CPU, at any thread count, from any state.

A machine shows only one CPU, one alignment and one allocation history, so each process
here compiles the kernels for another CPU (``NUMBA_CPU_NAME``: AVX2 as on an AMD EPYC,
AVX-512 as on a Xeon: the two kinds of machine CI runs on) and, inside it, varies what can
change a floating-point order: the thread count (1 to 4 on any machine), the number of
scratch slots (task boundaries), the gather buffer (rows read from the buffer or from the
factor table), the alignment of every input (offset by 1 to 3 floats) and the heap state
(allocations between calls).  Every result must equal the first bit for bit, and every
process must print the same digest, including a process that loads the host's kernels from
numba's on-disk cache instead of compiling them (cached code once gave other bits than
freshly compiled code).  Before the kernels were compiled without fast-math, 1,202 of 7,200
CG values moved by an ulp between 1 and 2 threads on AVX2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import hashlib
import numba
import numpy as np
from bench.models.als import ExplicitALS, ImplicitALS, Interactions
from bench.data.model import Ratings
from bench.kernels import als_explicit, als_implicit
from bench.kernels import als as K

rng = np.random.default_rng(21)
n_users, n_items, k = 700, 300, 12  # k not a multiple of 8: the dot's tail lanes too
counts = np.minimum(rng.zipf(1.6, n_users) + 2, n_items)
users = np.repeat(np.arange(n_users), counts).astype(np.int32)
items = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts]).astype(np.int32)
values = rng.integers(1, 6, len(users)).astype(np.float32)
ratings = Ratings(users, items, values, None, n_users, n_items)
conf_rows = Interactions.from_ratings(ratings, 1.0 + values).by_user
rating_rows = Interactions.from_ratings(ratings).by_user
y0 = (rng.standard_normal((n_items, k)) * 0.3).astype(np.float32)
x0 = (rng.standard_normal((n_users, k)) * 0.3).astype(np.float32)
item_bias = (rng.standard_normal(n_items) * 0.1).astype(np.float32)
reg = np.full(n_users, 0.1, dtype=np.float32)
no_prior = np.zeros((0, k), dtype=np.float32)


def shifted(a, offset):
    # a C-contiguous copy whose data starts `offset` floats into a fresh buffer
    flat = np.empty(a.size + offset, dtype=a.dtype)[offset:]
    flat[:] = a.ravel()
    return flat.reshape(a.shape)


def half_steps(threads, slots, gather_bytes, offset):
    numba.set_num_threads(threads)
    y = shifted(y0, offset)
    gram = K.gram(y, np.float32(0.1))
    imp = shifted(x0, offset)
    als_implicit._implicit_cg(conf_rows.indptr, conf_rows.indices,
                              shifted(conf_rows.values, offset), gram, y, imp, 3, gather_bytes,
                              slots)
    exp, bias = shifted(x0, offset), np.zeros(n_users, dtype=np.float32)
    als_explicit._explicit_cg(rating_rows.indptr, rating_rows.indices,
                              shifted(rating_rows.values, offset), y, shifted(item_bias, offset),
                              np.float32(3.5), reg, reg, no_prior, exp, bias, 3, gather_bytes,
                              slots)
    chol, cbias = shifted(x0, offset), np.zeros(n_users, dtype=np.float32)
    K.explicit_halfstep(rating_rows.indptr, rating_rows.indices, rating_rows.values, y,
                        item_bias, np.float32(3.5), reg, reg, no_prior, chol, cbias)
    imp_chol = shifted(x0, offset)
    K.implicit_cholesky_halfstep(conf_rows.indptr, conf_rows.indices, conf_rows.values, gram, y,
                                 imp_chol)
    pred = K.predict_pairs(users, items, exp, bias, y, item_bias, np.float32(3.5))
    loss = K.implicit_loss_terms(conf_rows.indptr, conf_rows.indices, conf_rows.values,
                                 K.gram(y, np.float32(0.0)), imp, y)
    sse = K.explicit_squared_error(rating_rows.indptr, rating_rows.indices, rating_rows.values,
                                   exp, bias, y, item_bias, np.float32(3.5))
    parts = (gram, imp, exp, bias, chol, cbias, imp_chol, pred, np.float64([loss, sse]))
    return hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest()


digests = set()
noise = []
for threads, slots, gather_bytes, offset in [
    (1, 1, 64 * 2**20, 0), (2, 2, 64 * 2**20, 0), (4, 4, 64 * 2**20, 1), (3, 7, 480, 2),
    (2, 5, 48, 3), (1, 3, 480, 1), (4, 1, 64 * 2**20, 3),
]:
    noise.append(np.empty(int(rng.integers(1, 5000)), dtype=np.float32))  # heap state
    digests.add(half_steps(threads, slots, gather_bytes, offset))
assert len(digests) == 1, digests

models = set()
for threads in (1, 2, 4):
    fitted = [
        ExplicitALS(factors=k, iterations=3, seed=3, threads=threads).fit(ratings),
        ExplicitALS(factors=k, iterations=2, seed=3, threads=threads,
                    solver="cholesky").fit(ratings),
        ImplicitALS(factors=k, iterations=3, seed=3, threads=threads).fit(ratings),
    ]
    noise.append(np.empty(int(rng.integers(1, 5000)), dtype=np.float32))
    models.add(hashlib.sha256(b"".join(m.user_factors_.tobytes() + m.item_factors_.tobytes()
                                       for m in fitted)).hexdigest())
assert len(models) == 1, models
print(digests.pop(), models.pop())
"""

#: CPUs to compile for: AVX2 (Zen 3, as the EPYC machines) and AVX-512 (as the Xeons).
#: (Plain x86-64, where the kernels' ``llvm.fma`` is computed exactly in software, was a
#: third until CI time ran short: no machine CI runs on lacks FMA.)
CPUS = ["znver3", "skylake-avx512"]


def run_as(cpu: str | None, cache: Path) -> str:
    """The script's digests from a fresh process compiling for ``cpu`` (the host's CPU when
    None), with numba's cache in ``cache`` (empty: compile and store; filled: load)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "4", "NUMBA_CACHE_DIR": str(cache)}
    env.pop("NUMBA_CPU_NAME", None)
    if cpu is not None:
        env["NUMBA_CPU_NAME"] = cpu
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.fixture(scope="module")
def host_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numba-host")


@pytest.fixture(scope="module")
def host_digest(host_cache: Path) -> str:
    return run_as(None, host_cache)  # compiles, and stores in host_cache


def test_the_host_cpu_gives_one_result_whatever_threads_slots_buffers_and_alignment(
    host_digest: str, host_cache: Path,
) -> None:
    assert len(host_digest.split()) == 2
    assert any(host_cache.rglob("*.nbi"))  # the kernels were stored ...
    assert run_as(None, host_cache) == host_digest  # ... and loaded code gives the same bits


@pytest.mark.parametrize("cpu", CPUS)
def test_every_cpu_target_gives_the_host_bits(cpu: str, host_digest: str, tmp_path) -> None:
    assert run_as(cpu, tmp_path) == host_digest
