"""How recbench's ALS time per iteration grows with ratings and factors; peak memory.

Synthetic data shaped like MovieLens-32M (``bench.data.synthetic.generate``: 200,948 users,
84,432 items, power-law popularity), ratings from 1M to 32M on that catalogue.  Each size
runs in its own process so its peak RSS (``ru_maxrss``: data, both CSR orientations,
factors) is its own.  Time per iteration is the median over ``--iterations`` iterations
of one fit, after a warm-up fit so numba's compile time is excluded.  Writes
``results/als_scaling.md`` and ``results/plots/als_scaling.png``.

    python benchmarks/scale_als.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_USERS, N_ITEMS = 200_948, 84_432


def measure(n_ratings: int, ks: list[int], mode: str, iterations: int, threads: int) -> dict:
    """One process: generate, prepare, fit per K; returns timings and the peak RSS."""
    from bench import synthetic
    from bench.models.als import ExplicitALS, ImplicitALS

    start = time.perf_counter()
    data = synthetic.generate(N_USERS, N_ITEMS, n_ratings, seed=0, threads=threads)
    generate_s = time.perf_counter() - start
    ratings = data.ratings
    model_cls = ExplicitALS if mode.startswith("explicit") else ImplicitALS
    extra = {"solver": "cholesky"} if mode == "explicit-cholesky" else {}
    model = model_cls(factors=8, iterations=1, threads=threads, **extra)
    start = time.perf_counter()
    prepared = model.prepare(ratings)
    prepare_s = time.perf_counter() - start
    model.fit(prepared)  # warm-up (numba cache load)
    per_k, cpu_k = {}, {}
    for k in ks:
        model = model_cls(factors=k, iterations=iterations, threads=threads, **extra)
        model.fit(prepared)
        per_k[k] = float(np.median(model.iteration_seconds_))
        cpu_k[k] = float(np.median(model.iteration_cpu_seconds_))
        print(f"{mode} {n_ratings:,} K={k}: {per_k[k]:.3f} s/it wall, {cpu_k[k]:.3f} cpu",
              file=sys.stderr, flush=True)  # fmt: skip
    return {
        "n_ratings": len(ratings),
        "mode": mode,
        "generate_s": generate_s,
        "prepare_s": prepare_s,
        "seconds_per_iteration": per_k,
        "cpu_seconds_per_iteration": cpu_k,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def child(args: argparse.Namespace, n_ratings: int, ks: list[int], mode: str) -> dict:
    cmd = [
        sys.executable, __file__, "--child", str(n_ratings), "--ks", ",".join(map(str, ks)),
        "--mode", mode, "--iterations", str(args.iterations), "--threads", str(args.threads),
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=False, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--sizes", default="1000000,4000000,16000000,32000000")
    parser.add_argument("--ks", default="8,16,32,64,128")
    parser.add_argument("--mode", default="explicit")
    parser.add_argument("--child", type=int, default=0)
    parser.add_argument("--out", default="results/als_scaling.md")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    if args.child:
        print(json.dumps(measure(args.child, ks, args.mode, args.iterations, args.threads)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    largest = max(sizes)
    results = []
    for n in sizes:
        # the K sweep on the largest set, K=32 elsewhere
        results.append(child(args, n, ks if n == largest else [32], args.mode))
    lines = [
        f"# recbench ALS ({args.mode}) scaling on ML-32M-shaped synthetic data",
        "",
        f"Command: `python benchmarks/scale_als.py --threads {args.threads} "
        f"--iterations {args.iterations} --sizes {args.sizes} --ks {args.ks} "
        f"--mode {args.mode}`  ",
        f"Machine: {platform.machine()} {platform.processor()}, {args.threads} thread(s) "
        "(2-core VM shared with other jobs); `bench.data.synthetic.generate` "
        f"({N_USERS:,} users x {N_ITEMS:,} items, seed 0).  Median seconds per iteration "
        "(both half-steps) over one fit, compile excluded; CPU s is the process CPU time of "
        "an iteration over all threads (other jobs cannot inflate it; CPU s / threads is the "
        "wall time on otherwise idle cores); peak RSS of the whole process (data, both CSR "
        "orientations, factors).",
        "",
        "| ratings | K | wall s / iteration | CPU s / iteration | CPU s / threads | "
        "prepare s | peak RSS GB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for k, s in r["seconds_per_iteration"].items():
            cpu = r["cpu_seconds_per_iteration"][k]
            lines.append(
                f"| {r['n_ratings']:,} | {k} | {s:.3f} | {cpu:.3f} | {cpu / args.threads:.3f} | "
                f"{r['prepare_s']:.2f} | {r['peak_rss_gb']:.2f} |"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(results, Path(args.out).parent / "plots" / "als_scaling.png", args.mode)


def _plot(results: list[dict], path: Path, mode: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    n = [r["n_ratings"] / 1e6 for r in results]
    for key, label in (("seconds_per_iteration", "wall"), ("cpu_seconds_per_iteration", "CPU")):
        left.plot(n, [r[key]["32"] for r in results], "o-", label=label)
        sweep = max(results, key=lambda r: len(r[key]))
        ks = [int(k) for k in sweep[key]]
        right.plot(ks, list(sweep[key].values()), "o-", label=label)
    left.legend()
    left.set(xlabel="ratings (millions)", ylabel="s / iteration", title="K = 32")
    right.set(xlabel="K", ylabel="s / iteration", xscale="log", yscale="log",
              title=f"{sweep['n_ratings'] / 1e6:.0f}M ratings")  # fmt: skip
    fig.suptitle(f"recbench ALS ({mode})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
