"""Tune recbench.ALS (explicit) on validation rows carved from train, then 5-fold CV on ML-100k.

Protocol: ``bench.splits`` k-fold (5 folds, seed 0, Surprise's rule).  For every fold, each
grid point is fitted on the fold's train rows minus a validation hold-out
(``bench.splits.validation_rows``) with early stopping on that hold-out; test rows are never
read while tuning.  The defaults are the grid point with the best mean validation RMSE over
the folds (cheapest by factors x (CG steps + 1) x iterations among points within 0.001 of
the best), with
the median best iteration count.  Then, in the same run: 5-fold CV test
RMSE of those defaults (fitted on each fold's full train rows) and of Surprise SVD (defaults,
one thread), with fit times, written to ``results/als_explicit_cv.md``.

    python benchmarks/tune_als_explicit.py [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _data import load_ml100k  # noqa: E402

from bench import splits  # noqa: E402
from bench.als import ExplicitALS  # noqa: E402

GRID = {
    "factors": [16, 32, 64],
    "reg_factors": [1.0, 1.25, 1.5],
    "reg_bias": [3.0],
    "reg_exponent": [0.5],
    "solver": ["cg"],
    "cg_steps": [2, 3],
}
#: grid points this close to the best mean validation RMSE count as equally good
TOLERANCE = 0.001
MAX_ITERATIONS = 40


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pred.astype(np.float64) - truth))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/als_explicit_cv.md")
    args = parser.parse_args()

    data = load_ml100k()
    ratings = data.ratings
    spec = splits.SplitSpec("kfold", n_folds=5, seed=0)
    fold_of_row = splits.assign(ratings, spec)
    folds = [splits.fold_rows(fold_of_row, f) for f in spec.folds]
    points = [dict(zip(GRID, v, strict=True)) for v in itertools.product(*GRID.values())]

    # warm-up: compile (or load the numba cache) outside every timing
    ExplicitALS(factors=8, iterations=1, threads=args.threads).fit(ratings.take(np.arange(1000)))

    val_rmse = np.zeros((len(points), len(folds)))
    best_its = np.zeros((len(points), len(folds)), dtype=int)
    for f, fold in enumerate(folds):
        inner = splits.validation_rows(ratings, fold.train_rows, spec)
        fit_rows, val_rows = ratings.take(inner.train_rows), ratings.take(inner.test_rows)
        for p, point in enumerate(points):
            model = ExplicitALS(
                **point, iterations=MAX_ITERATIONS, patience=5, threads=args.threads
            ).fit(fit_rows, validation=val_rows, rating_scale=data.rating_scale)
            val_rmse[p, f] = min(model.validation_rmse_)
            best_its[p, f] = model.best_iteration_
            print(f"fold {f} {point} val {val_rmse[p, f]:.4f} it {best_its[p, f]}", flush=True)
    mean_val = val_rmse.mean(axis=1)
    its = np.median(best_its, axis=1).astype(int)
    # work per iteration grows with factors x (CG steps + the residual pass)
    cost = np.array([p["factors"] * (p["cg_steps"] + 1) for p in points]) * its
    near = np.flatnonzero(mean_val <= mean_val.min() + TOLERANCE)
    best = int(near[np.argmin(cost[near])])
    chosen = {**points[best], "iterations": int(its[best])}
    print("chosen", chosen, flush=True)

    from surprise import SVD, Dataset, Reader

    reader = Reader(rating_scale=data.rating_scale)
    rows = []
    for f, fold in enumerate(folds):
        train, test = ratings.take(fold.train_rows), ratings.take(fold.test_rows)
        model = ExplicitALS(**chosen, threads=args.threads)
        prepared = model.prepare(train)  # timed apart, as the harness times prepare()
        start = time.perf_counter()
        model.fit(prepared, rating_scale=data.rating_scale)
        als_fit = time.perf_counter() - start
        als_rmse = rmse(model.predict(test.users, test.items), test.ratings)

        import pandas as pd

        frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
        trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
        start = time.perf_counter()
        svd = SVD(random_state=0).fit(trainset)
        svd_fit = time.perf_counter() - start
        preds = np.array(
            [svd.predict(u, i).est for u, i in zip(test.users.tolist(), test.items.tolist(),
                                                  strict=True)]
        )
        svd_rmse = rmse(preds, test.ratings)
        rows.append((f, als_rmse, als_fit, svd_rmse, svd_fit))
        print(f"fold {f}: ALS {als_rmse:.4f} {als_fit:.3f}s  SVD {svd_rmse:.4f} {svd_fit:.3f}s",
              flush=True)

    table = np.array(rows)
    mean = table.mean(axis=0)
    lines = [
        "# recbench.ALS (explicit) on ML-100k, 5-fold CV",
        "",
        f"Command: `python benchmarks/tune_als_explicit.py --threads {args.threads}`  ",
        f"Machine: {platform.machine()} {platform.processor() or ''}, "
        f"{args.threads} thread(s); Surprise SVD is single-threaded.  ",
        "Folds: `bench.splits` kfold, 5 folds, seed 0.  Defaults chosen on validation rows "
        "carved from each fold's train rows (never test rows): the cheapest point within "
        f"{TOLERANCE} of the best mean validation RMSE.",
        "",
        f"Chosen: `{chosen}`",
        "",
        "| grid point | mean validation RMSE | best iterations per fold |",
        "|---|---|---|",
    ]
    for p, point in enumerate(points):
        lines.append(
            f"| `{point}` | {val_rmse[p].mean():.4f} | {', '.join(map(str, best_its[p]))} |"
        )
    lines += [
        "",
        "ALS fit s excludes building its CSR matrices (the adapter's `prepare`), as SVD fit s "
        "excludes building Surprise's Trainset.",
        "",
        "| fold | ALS RMSE | ALS fit s | Surprise SVD RMSE | SVD fit s |",
        "|---|---|---|---|---|",
    ]
    for f, a, af, s, sf in rows:
        lines.append(f"| {int(f)} | {a:.4f} | {af:.3f} | {s:.4f} | {sf:.3f} |")
    lines.append(
        f"| mean | **{mean[1]:.4f}** | {mean[2]:.3f} | {mean[3]:.4f} | {mean[4]:.3f} |"
    )
    lines += ["", f"Fit time ratio ALS / SVD: **{mean[2] / mean[4]:.3f}**", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
