"""Calibrate the defaults of ``synthetic:`` (bench.data.synthetic.latent) and of the twin
(``synthetic:like=...``, bench.data.synthetic.twin) on ML-100k.

What is matched, and how:

1. user activity: ``activity_spread`` and ``activity_curve`` by least squares, the
   stretched exponential ``log count = a - spread * (rank / users) ** curve`` fitted to
   ML-100k's ratings per user sorted by rank (the counts are allotted exactly so);
2. the other parameters of the generator by coordinate search from ``START``: in each of
   ``--rounds`` rounds every parameter in turn tries the values of ``STEPS`` around the
   current point (halved each round) and keeps the best.  A point generates an
   ML-100k-shaped dataset with seed 1 (the fidelity report uses seed 0), runs the cheap
   `quick` ranking models (Popularity, EASE, ImplicitALS, PureSVD, CosineKNN) on both
   quick splits, and scores the mean plus half the largest |log(synthetic NDCG@10 / real
   NDCG@10)|, plus the mean |log| distance of the item-popularity quantiles;
3. the twin's ``kappa`` and ``topics`` by grid search (twin seed 1) on the same score plus
   the share of discordant pairs in the order of those models on each split: the twin's
   target is the order of the models, the generator's their NDCG as well.

Only aggregate numbers of ML-100k are used (NDCG@10 of models, counts by rank).

    python benchmarks/calibrate_synthetic.py [--rounds 3] \
        [--out results/synthetic_calibration.md]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quick_models import Cache, evaluate  # noqa: E402

from bench.data import datasets  # noqa: E402

CHEAP = ["baseline.Popularity", "recbench.EASE", "recbench.ImplicitALS", "scipy.PureSVD",
         "implicit.CosineKNN"]
SHAPE = {"users": 943, "items": 1682, "ratings": 100000, "seed": 1}
QUANTILES = [10, 25, 50, 75, 90, 99, 100]
#: the search's starting point
START = {"n_topics": 20, "focus": 2.0, "popularity_mix": 0.2, "popularity_spread": 7.0,
         "popularity_curve": 1.0, "topic_spread": 0.3, "affinity": 0.5, "item_bias_sd": 0.7,
         "popularity_rating": 0.5, "user_bias_sd": 0.4}
#: per parameter: ("x", factors) multiplies, ("+", deltas) adds; then (low, high)
STEPS = {
    "n_topics": (("x", (0.5, 0.7, 1.4, 2.0)), (4, 200)),
    "focus": (("x", (0.5, 0.7, 1.4, 2.0)), (0.1, 20.0)),
    "popularity_mix": (("+", (-0.1, -0.05, 0.05, 0.1)), (0.0, 0.9)),
    "popularity_spread": (("+", (-2.0, -1.0, 1.0, 2.0)), (1.0, 15.0)),
    "popularity_curve": (("x", (0.7, 0.85, 1.2, 1.4)), (0.2, 3.0)),
    "topic_spread": (("+", (-0.2, -0.1, 0.1, 0.2)), (0.0, 1.0)),
    "affinity": (("+", (-0.5, -0.25, 0.25, 0.5)), (0.0, 3.0)),
    "item_bias_sd": (("+", (-0.3, -0.15, 0.15, 0.3)), (0.0, 2.0)),
    "popularity_rating": (("+", (-0.2, -0.1, 0.1, 0.2)), (0.0, 0.95)),
    "user_bias_sd": (("+", (-0.3, -0.15, 0.15, 0.3)), (0.0, 2.0)),
}
TWIN_GRID = {"kappa": [1.5, 2.0, 3.0, 5.0, 8.0], "topics": [20, 40, 60]}


def log_quantiles(counts: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.percentile(counts, QUANTILES), 1.0))


def fit_activity(counts: np.ndarray) -> tuple[float, float]:
    """(spread, curve) of the stretched exponential through the sorted counts."""
    c = np.log(np.sort(counts)[::-1].astype(np.float64))
    rank = (np.arange(len(c)) + 0.5) / len(c)
    fit = least_squares(lambda p: p[0] - p[1] * rank ** p[2] - c, (c[0], c[0] - c[-1], 1.0),
                        bounds=([0, 0, 0.01], [50, 50, 10]))
    return round(float(fit.x[1]), 2), round(float(fit.x[2]), 2)


def name_of(params: dict) -> str:
    return "synthetic:" + ",".join(f"{k}={v}" for k, v in params.items())


def moves(key: str, value: float, scale: float) -> list[float]:
    (kind, steps), (lo, hi) = STEPS[key]
    out = []
    for step in steps:
        x = value * step ** scale if kind == "x" else value + step * scale
        x = min(max(x, lo), hi)
        x = int(round(x)) if key == "n_topics" else float(f"{x:.3g}")
        if x != value and x not in out:
            out.append(x)
    return out


class Scorer:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.real = evaluate("ml-100k", CHEAP, cache, log=lambda _m: None)
        self.real_items = log_quantiles(datasets.load("ml-100k").ratings.item_counts())

    def __call__(self, name: str, order: bool = False) -> tuple[float, dict]:
        got = evaluate(name, CHEAP, self.cache, log=lambda _m: None)
        gaps = [abs(math.log(max(got[k], 1e-6) / self.real[k])) for k in self.real]
        items = datasets.load(name).ratings.item_counts()
        shape = np.abs(log_quantiles(items) - self.real_items).mean()
        value = float(np.mean(gaps) + 0.5 * max(gaps) + shape)
        if order:
            value += discordant(got, self.real)
        return value, got


def discordant(got: dict, real: dict) -> float:
    """Share of model pairs ordered otherwise than in ``real``, over both splits."""
    pairs = [(s, a, b) for s in ("random", "stratified") for a in CHEAP for b in CHEAP if a < b]
    return sum((got[(s, a)] - got[(s, b)]) * (real[(s, a)] - real[(s, b)]) < 0
               for s, a, b in pairs) / len(pairs)


def table(rows: list[tuple[float, str, dict]], real: dict, n: int) -> list[str]:
    cols = [(s, m) for s in ("random", "stratified") for m in CHEAP]
    head = ["score", "dataset", *[f"{s[:5]} {m.split('.')[-1]}" for s, m in cols]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
           "| | ml-100k (real) | " + " | ".join(f"{real[c]:.3f}" for c in cols) + " |"]
    for score, name, got in sorted(rows, key=lambda r: r[0])[:n]:
        out.append(f"| {score:.3f} | `{name}` | " + " | ".join(f"{got[c]:.3f}" for c in cols)
                   + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("results/synthetic_calibration.md"))
    ap.add_argument("--cache", type=Path, default=Path("results/local/calibration_cache.json"))
    args = ap.parse_args()
    start = time.time()
    cache = Cache(args.cache)
    score = Scorer(cache)
    spread, curve = fit_activity(datasets.load("ml-100k").ratings.user_counts())
    fixed = {**SHAPE, "activity_spread": spread, "activity_curve": curve}
    print(f"activity_spread {spread}, activity_curve {curve}", flush=True)
    rows: list[tuple[float, str, dict]] = []

    def run(params: dict) -> float:
        name = name_of({**fixed, **params})
        value, got = score(name)
        rows.append((value, name, got))
        print(f"{len(rows):4d} {value:.3f} {name}", flush=True)
        return value

    point, best = dict(START), run(START)
    for r in range(args.rounds):
        for key in STEPS:
            for value in moves(key, point[key], 0.5**r):
                trial = {**point, key: value}
                got = run(trial)
                if got < best:
                    point, best = trial, got
        print(f"round {r}: best {best:.3f} {point}", flush=True)
    twin_rows = []
    for kappa in TWIN_GRID["kappa"]:
        for topics in TWIN_GRID["topics"]:
            name = f"synthetic:like=ml-100k,seed=1,kappa={kappa},topics={topics}"
            value, got = score(name, order=True)
            twin_rows.append((value, name, got))
            print(f"twin {value:.3f} {name}", flush=True)
    twin_best = min(twin_rows, key=lambda r: r[0])
    lines = [
        "# Calibration of the synthetic generators on ML-100k",
        "",
        f"Command: `python benchmarks/calibrate_synthetic.py --rounds {args.rounds}` "
        f"({time.time() - start:.0f} s on this machine, {len(rows) + len(twin_rows)} points).",
        "",
        "Score of a point: mean plus half the largest |log(synthetic / real NDCG@10)| over the "
        f"`quick` suite's two splits and {', '.join(CHEAP)} (seeds 0-2 where the model is "
        "stochastic), plus the mean |log| distance between the item-popularity quantiles "
        f"({', '.join(map(str, QUANTILES))}) of the synthetic data and ML-100k's.  Generated "
        "data uses seed 1; the fidelity report (results/synthetic_fidelity.md) uses seed 0.",
        "",
        "## Chosen defaults of `synthetic:` (bench/data/synthetic/latent.py)",
        "",
        f"- activity_spread = {spread}, activity_curve = {curve} (least squares on ML-100k's "
        "ratings per user by rank)",
        *[f"- {k} = {v}" for k, v in point.items()],
        f"- score {best:.3f}",
        "",
        f"Best 10 of {len(rows)} points:",
        "",
        *table(rows, score.real, 10),
        "",
        "## Chosen defaults of the twin (bench/data/synthetic/twin.py)",
        "",
        f"`{twin_best[1]}` (score {twin_best[0]:.3f}, with the share of discordant pairs); the "
        "grid:",
        "",
        *table(twin_rows, score.real, len(twin_rows)),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
