"""What the fixed-order ALS kernels cost: one CG half-step against the fast-math kernels.

The fast-math kernels are read from git (``bench/kernels/als.py`` at commit 8867e10, the
last before the fixed order) into a temporary module, and both are timed in turn on the
same problem, the ratio taken pair by pair so a drifting machine cancels out:

    python benchmarks/als_fixed_order.py --threads 1 > results/als_fixed_order.md

Needs a git checkout with that commit.  Prints a markdown table: median and range of the
ratios over ``--repeat`` pairs.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from bench import Ratings
from bench.kernels import als as fixed
from bench.models.als import Interactions

OLD_COMMIT = "8867e10"


def fast_math_kernels():
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "-C", str(root), "show", f"{OLD_COMMIT}:bench/kernels/als.py"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "als_fastmath.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("als_fastmath", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_users, n_items = 20_000, 5_000
    counts = np.minimum(rng.zipf(1.5, n_users) + 20, n_items)
    users = np.repeat(np.arange(n_users), counts).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    values = rng.integers(1, 6, len(users)).astype(np.float32)
    r = Ratings(users, items.astype(np.int32), values, None, n_users, n_items)
    return rng, Interactions.from_ratings(r, 1.0 + values).by_user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    old = fast_math_kernels()
    rng, rows = problem()
    numba.set_num_threads(args.threads)
    n_users, n_items = rows.indptr.shape[0] - 1, int(rows.indices.max()) + 1
    print(f"One CG half-step (3 steps), {n_users:,} x {n_items:,}, {len(rows.indices):,} "
          f"entries, {args.threads} thread(s); time of the fixed-order kernels / the fast-math "
          f"kernels of {OLD_COMMIT}, median (min-max) of {args.repeat} pairs.\n")
    print("| kernel | K | ratio |\n|---|---|---|")
    for k in (32, 64):
        y = (rng.standard_normal((n_items, k)) * 0.1).astype(np.float32)
        x0 = (rng.standard_normal((n_users, k)) * 0.1).astype(np.float32)
        gram = fixed.gram(y, np.float32(0.1))
        reg = np.full(n_users, 0.1, np.float32)
        bias, none = np.zeros(n_items, np.float32), np.zeros((0, k), np.float32)

        def implicit(m, y=y, x0=x0, gram=gram):
            m.implicit_cg_halfstep(rows.indptr, rows.indices, rows.values, gram, y, x0.copy(), 3)

        def explicit(m, y=y, x0=x0, reg=reg, bias=bias, none=none):
            m.explicit_cg_halfstep(rows.indptr, rows.indices, rows.values, y, bias,
                                   np.float32(3.0), reg, reg, none, x0.copy(),
                                   np.zeros(n_users, np.float32), 3)  # fmt: skip

        for name, call in (("implicit CG", implicit), ("explicit CG", explicit)):
            call(old), call(fixed)  # compile
            ratios = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                call(old)
                t1 = time.perf_counter()
                call(fixed)
                ratios.append((time.perf_counter() - t1) / (t1 - t0))
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            print(f"| {name} | {k} | {np.median(ratios):.2f} ({spread}) |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
