"""recbench.ImplicitALS vs implicit's CPU ALS: time per iteration and NDCG@10, same work.

Same work: one confidence matrix ``C = 1 + alpha * r`` (alpha = 1, r = the rating) given to
both; implicit gets ``alpha=1.0`` so it uses C unchanged (its confidence is ``alpha * x``),
recbench gets C through ``prepare_confidence``.  Same factors, regularisation, iterations,
3 CG steps, float32, same thread count (numba / implicit's OpenMP), BLAS limited to one
thread.  Time per iteration: implicit's per-iteration callback and recbench's
``iteration_seconds_``; the median over the iterations of a fit, best of ``--rounds``
interleaved fits (the machine is shared).  numba compile time is excluded (``cache=True`` and
a warm-up fit first).  NDCG@10: random 80/20 split (seed 0), train items excluded, every
test item relevant, ties by item code (``bench.evaluation.ranking``); on the synthetic set a seeded
sample of 5000 test users.

    python benchmarks/compare_implicit.py --threads 2 [--synthetic-ratings 10000000]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

sys.path.insert(0, str(Path(__file__).parent))
from _data import load_ml100k  # noqa: E402

from bench import Ratings, metrics, ranking, synthetic, threads  # noqa: E402
from bench.models.als import ImplicitALS  # noqa: E402


def ndcg_at_10(user_factors, item_factors, train: sp.csr_matrix, test: Ratings, users) -> float:
    scores = user_factors[users] @ item_factors.T
    ranking.exclude(scores, users, train)
    top = ranking.top_k(scores, 10)
    keys = np.sort(test.pair_keys())
    hits = metrics.hits_matrix(top, users, keys, test.n_items)
    n_rel = test.user_counts()[users]
    return float(metrics.ranking_metrics(hits, n_rel, 10)["ndcg"].mean())


def run_implicit(conf: sp.csr_matrix, k: int, reg: float, iterations: int, threads: int):
    # imported at the top so that the BLAS limit below covers implicit's BLAS too
    model = AlternatingLeastSquares(
        factors=k, regularization=reg, alpha=1.0, iterations=iterations, use_cg=True,
        num_threads=threads, random_state=0, calculate_training_loss=False,
    )  # fmt: skip
    seconds: list[float] = []
    cpu = [time.process_time()]

    def record(_iteration: int, elapsed: float, _loss: float | None) -> None:
        seconds.append(elapsed)
        cpu.append(time.process_time())

    model.fit(conf, show_progress=False, callback=record)
    cpu_seconds = np.diff(cpu)[1:]  # the first interval also holds fit()'s transpose
    return (model.user_factors, model.item_factors, float(np.median(seconds)),
            float(np.median(cpu_seconds)))  # fmt: skip


def run_recbench(conf: sp.csr_matrix, k: int, reg: float, iterations: int, threads: int):
    model = ImplicitALS(factors=k, regularization=reg, iterations=iterations, threads=threads)
    model.fit(model.prepare_confidence(conf))
    return (model.user_factors_, model.item_factors_, float(np.median(model.iteration_seconds_)),
            float(np.median(model.iteration_cpu_seconds_)))  # fmt: skip


def compare(name, ratings: Ratings, ks, iterations, threads, rounds, reg, eval_users, out):
    rng = np.random.default_rng(0)
    is_test = rng.random(len(ratings)) < 0.2
    train, test = ratings.take(~is_test), ratings.take(is_test)
    conf = train.to_csr()
    conf.data = 1.0 + conf.data
    train_seen = train.to_csr()
    users = np.unique(test.users)
    if eval_users and len(users) > eval_users:
        users = np.sort(rng.choice(users, eval_users, replace=False))
    users = users.astype(np.int32)
    run_recbench(conf[:200], 8, reg, 1, threads)  # warm-up: load numba's cache
    for k in ks:
        best = {"implicit": np.inf, "recbench": np.inf}
        best_cpu = {"implicit": np.inf, "recbench": np.inf}
        ndcg = {}
        for _ in range(rounds):
            for lib, run in (("implicit", run_implicit), ("recbench", run_recbench)):
                uf, itf, per_it, cpu_it = run(conf, k, reg, iterations, threads)
                best[lib] = min(best[lib], per_it)
                best_cpu[lib] = min(best_cpu[lib], cpu_it)
                ndcg[lib] = ndcg_at_10(uf, itf, train_seen, test, users)
        ratio = best["recbench"] / best["implicit"]
        cpu_ratio = best_cpu["recbench"] / best_cpu["implicit"]
        line = (
            f"| {name} | {len(train):,} | {k} | {threads} | {best['implicit'] * 1e3:.1f} | "
            f"{best['recbench'] * 1e3:.1f} | **{ratio:.2f}** | "
            f"{best_cpu['implicit'] * 1e3:.1f} | {best_cpu['recbench'] * 1e3:.1f} | "
            f"**{cpu_ratio:.2f}** | {ndcg['implicit']:.4f} | "
            f"{ndcg['recbench']:.4f} | {ndcg['recbench'] - ndcg['implicit']:+.4f} |"
        )
        print(line, flush=True)
        out.append(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--reg", type=float, default=0.1)
    parser.add_argument("--synthetic-ratings", type=int, default=10_000_000)
    parser.add_argument("--synthetic-iterations", type=int, default=5)
    parser.add_argument("--out", default="results/als_vs_implicit.md")
    args = parser.parse_args()

    rows: list[str] = []
    with threads.blas_limited(1):
        ml = load_ml100k()
        compare("ML-100k", ml.ratings, (32, 64), args.iterations, args.threads, args.rounds,
                args.reg, 0, rows)  # fmt: skip
        if args.synthetic_ratings:
            start = time.perf_counter()
            syn = synthetic.generate(200_948, 84_432, args.synthetic_ratings, seed=0,
                                     threads=args.threads)
            print(f"generated in {time.perf_counter() - start:.1f}s", flush=True)
            compare(f"synthetic {args.synthetic_ratings / 1e6:.0f}M", syn.ratings, (32, 64),
                    args.synthetic_iterations, args.threads, max(1, args.rounds - 1), args.reg,
                    5000, rows)  # fmt: skip
    header = [
        "# recbench.ImplicitALS vs implicit ALS (CPU, conjugate gradient)",
        "",
        f"Command: `python benchmarks/compare_implicit.py --threads {args.threads} "
        f"--rounds {args.rounds} --synthetic-ratings {args.synthetic_ratings}`  ",
        f"Machine: {platform.machine()}, {args.threads} thread(s), shared 2-core VM; "
        f"regularization {args.reg}, confidence 1 + r for both, 3 CG steps; "
        f"ML-100k {args.iterations} iterations, synthetic {args.synthetic_iterations}.  ",
        "Time per iteration: median over a fit's iterations, best of interleaved rounds; "
        "numba compile excluded (cache + warm-up).  NDCG@10 after the last iteration.",
        "",
        "CPU ms/it: process CPU time of an iteration over all threads (a shared machine "
        "inflates wall time, not CPU time).",
        "",
        "| data | train ratings | K | threads | implicit wall ms/it | recbench wall ms/it | "
        "wall ratio | implicit CPU ms/it | recbench CPU ms/it | CPU ratio | "
        "NDCG@10 implicit | NDCG@10 recbench | diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(header + rows) + "\n")
    print("\n".join(header + rows))


if __name__ == "__main__":
    main()
