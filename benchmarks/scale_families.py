"""Fit time per iteration and trial peak memory of the model families that
``results/scale_runs.md`` measured at one size only, at two more sizes (1M and 10M ratings),
so that ``benchmarks/extrapolate_1b.py`` can fit a scaling exponent for each
(``--adapters spark.ALS`` adds Spark's ALS, left out by default: see ``OPTIONAL``).

Each size is a ``bench run`` (two threads, the ``scale`` suite's setting) on ML-32M-shaped
synthetic data (the shape ``benchmarks/scale_stages.py`` uses: 200,948 users x 84,432
items at 32M, users in proportion to the ratings, items x sqrt) with fewer iterations /
epochs than the ``scale`` suite (time per iteration is what scales); EASE, whose cost
depends on the catalogue and not on the ratings, runs on 1M ratings over 2,000 / 4,000 /
8,000 items.  Writes ``results/scale_families.json`` (one row per trial: adapter, ratings,
users, items, iterations, prepare / fit / recommend seconds, worker peak RSS MiB).

    python benchmarks/scale_families.py [--sizes 1,10] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2
#: adapter -> (its parameters, the parameter that counts iterations / epochs, or None)
FAMILIES = {
    "implicit.ALS": ({"factors": 64, "iterations": 3, "regularization": 10.0, "alpha": 2.0},
                     "iterations"),
    "implicit.BPR": ({"factors": 64, "iterations": 5}, "iterations"),
    "scipy.PureSVD": ({"rank": 64}, None),
    "lightfm.WARP": ({"no_components": 64, "epochs": 1}, "epochs"),
}
#: not in the default list: on the shared 2-core machine its 1M trial ran past 300 s
OPTIONAL = {"spark.ALS": ({"rank": 64, "maxIter": 3, "regParam": 0.1}, "maxIter")}
EASE_ITEMS = (2_000, 4_000, 8_000)


def shape(millions: float) -> tuple[int, int, int]:
    n = int(round(millions * 1_000_000))
    users = max(int(round(200_948 * n / 32_000_000)), 100)
    items = max(int(round(84_432 * math.sqrt(n / 32_000_000))), 100)
    return users, items, n


def toml_value(v) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v)


def suite_text(datasets: list[str], adapters: dict) -> str:
    params = ", ".join(
        f'"{name}" = {{ ' + ", ".join(f"{k} = {toml_value(v)}" for k, v in p.items()) + " }"
        for name, (p, _) in adapters.items()
    )
    return (
        "[[run]]\n"
        f"datasets = {json.dumps(datasets)}\n"
        'splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]\n'
        f"adapters = {json.dumps(list(adapters))}\n"
        'metrics = { ks = [10], threshold = "none" }\ntime_limit = 300\n'
        f"params = {{ {params} }}\n"
    )


def run(name: str, datasets: list[str], adapters: dict, work: Path) -> list[dict]:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    suite = out / "families.toml"
    suite.write_text(suite_text(datasets, adapters))
    env = dict(os.environ, RECBENCH_CACHE_DIR=str(out / "cache"))
    subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
                    str(out / "results"), "--threads", str(THREADS), "--no-report",
                    "--no-admission"], env=env, cwd=ROOT, check=False)  # failures: in records
    rows = []
    for line in (out / "results/runs/families.jsonl").open():
        rec = json.loads(line)
        params, counter = adapters[rec["adapter"]]
        spec = dict(kv.split("=") for kv in rec["dataset"].split(":", 1)[1].split(","))
        rows.append({
            "adapter": rec["adapter"], "dataset": rec["dataset"], "status": rec["status"],
            "error": rec.get("error"),
            "ratings": int(spec["ratings"]), "train_ratings": rec.get("n_train"),
            "users": int(spec["users"]), "items": int(spec["items"]),
            "iterations": params.get(counter) if counter else None,
            "prepare_seconds": rec.get("prepare_seconds"), "fit_seconds": rec.get("fit_seconds"),
            "recommend_seconds": rec.get("recommend_seconds"),
            "peak_rss_mb": rec.get("peak_rss_mb"), "threads": rec.get("threads"),
            "other_cpus": (rec.get("host_load") or {}).get("other_cpus"),
        })
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    shutil.rmtree(out / "cache", ignore_errors=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,10", help="millions of ratings")
    p.add_argument("--adapters", default=",".join(FAMILIES), help="comma-separated")
    p.add_argument("--no-ease", action="store_true")
    p.add_argument("--work", type=Path, default=Path("/tmp/recbench-scale-families"))
    p.add_argument("--out", type=Path, default=ROOT / "results/scale_families.json")
    args = p.parse_args()
    chosen = {a: {**FAMILIES, **OPTIONAL}[a] for a in args.adapters.split(",") if a}
    rows: list[dict] = []
    for size in args.sizes.split(","):
        users, items, n = shape(float(size))
        data = f"synthetic:users={users},items={items},ratings={n},seed=0"
        rows += run(f"{size}M", [data], chosen, args.work)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")  # partial rows survive
    if not args.no_ease:
        data = [f"synthetic:users=20000,items={m},ratings=1000000,seed=0" for m in EASE_ITEMS]
        rows += run("ease", data, {"recbench.EASE": ({"regularization": 500.0}, None)},
                    args.work)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
