"""Per-trial overhead at scale (issue 22): a trial's wall time minus its timed stages
(prepare, fit, predict, recommend), for cheap trials on large data, and the peak memory of
the data stages (load the dataset, take the split, copy the train / test rows) against the
raw bytes of the (user, item, rating, time) columns.

``measure`` runs, with the Python of the checkout to measure (``main`` for "before", this
branch for "after"), a two-trial suite (baseline.Popularity and baseline.Random, random
80/20, two threads: the ``scale`` suite's settings) in one serial worker, so the first
trial pays the worker's cold start and the second shows the steady state; then a fresh
process of that checkout repeats the worker's data stages alone and reports its peak RSS.
``report`` turns the JSON files into a markdown table.

    RECBENCH_CACHE_DIR=DIR python benchmarks/trial_overhead.py measure \
        --python /work/main/.venv/bin/python --label before \
        --dataset 'synthetic:users=200948,items=84432,ratings=32000000,seed=0' \
        --results /tmp/oh-32m-before --out /tmp/oh-32m-before.json
    python benchmarks/trial_overhead.py report /tmp/oh-*.json > results/trial_overhead.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SUITE = """description = "trial overhead (benchmarks/trial_overhead.py)"
threads = 2
[[run]]
datasets = [{dataset!r}]
splits = [{{ method = "random", test_fraction = 0.2, seed = 0 }}]
adapters = ["baseline.Popularity", "baseline.Random"]
metrics = {{ ks = [10], threshold = "none" }}
time_limit = 1800
"""

#: the worker's data stages in a fresh process of the measured checkout
PROBE = r"""
import json, sys, time
from pathlib import Path

def status():
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out

from bench.execution import trial
from bench.splitting.splits import SplitSpec
name, results, store = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if store:
    from bench.execution import datastore
    datastore.use_store(name, store)
spec = trial.TrialSpec(dataset=name, split=SplitSpec("random", test_fraction=0.2, seed=0),
                       fold=0, adapter="baseline.Popularity")
before = status()
t0 = time.perf_counter()
ds = trial.load_dataset(name)
t1 = time.perf_counter()
fold = trial.stage_rows(spec, ds, results)
t2 = time.perf_counter()
train = ds.ratings.take(fold.train_rows)
test = ds.ratings.take(fold.test_rows)
t3 = time.perf_counter()
r = ds.ratings
raw = sum(a.nbytes for a in (r.users, r.items, r.ratings, r.timestamps) if a is not None)
print(json.dumps({"before": before, "after": status(), "raw_mb": raw / 2**20,
                  "load_s": t1 - t0, "split_s": t2 - t1, "take_s": t3 - t2,
                  "rows": len(r), "train": len(train), "test": len(test)}))
"""


def measure(args: argparse.Namespace) -> None:
    results = Path(args.results).resolve()  # the runs start there, outside any checkout
    results.mkdir(parents=True, exist_ok=True)
    suite = results / "overhead.toml"
    suite.write_text(SUITE.format(dataset=args.dataset))
    t0 = time.perf_counter()
    run = subprocess.run([args.python, "-m", "bench", "run", "--suite", str(suite), "--results",
                          str(results), "--no-report"], capture_output=True, text=True, cwd=results)
    wall = time.perf_counter() - t0
    (results / "run.log").write_text(run.stderr)
    if run.returncode != 0:
        raise SystemExit(f"bench run failed ({run.returncode}):\n{run.stderr[-3000:]}")
    records = [json.loads(line) for f in sorted((results / "runs").glob("*.jsonl"))
               for line in f.read_text().splitlines() if line.strip()]
    store = next((r.get("data_delivery", {}).get("store", "") for r in records), "")
    probe = subprocess.run([args.python, "-c", PROBE, args.dataset, str(results), store or ""],
                           capture_output=True, text=True, cwd=results)
    if probe.returncode != 0:
        raise SystemExit(f"data-stage probe failed:\n{probe.stderr[-3000:]}")
    out = {"label": args.label, "dataset": args.dataset, "python": args.python,
           "run_wall_seconds": wall, "records": records,
           "probe": json.loads(probe.stdout.strip().splitlines()[-1]),
           "other_cpus_load": os.getloadavg()}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(summary(out), indent=1))


def overhead(rec: dict) -> float:
    timed = sum(rec.get(k) or 0.0 for k in ("prepare_seconds", "fit_seconds",
                                            "predict_seconds", "recommend_seconds"))
    return rec["duration_seconds"] - timed


def summary(m: dict) -> list[dict]:
    rows = []
    for i, rec in enumerate(m["records"]):
        d = rec.get("data_delivery") or {}
        rows.append({
            "trial": f"{i + 1} ({'cold' if i == 0 else 'warm'} worker) {rec['adapter']}",
            "duration": rec["duration_seconds"], "overhead": overhead(rec),
            "timed": rec["duration_seconds"] - overhead(rec),
            "load": d.get("load_seconds"), "split": d.get("split_seconds"),
            "take": d.get("take_seconds"), "verify": d.get("verify_seconds"),
            "status": rec["status"], "ndcg": (rec.get("metrics") or {}).get("ndcg@10"),
            "bytes_scattered": d.get("bytes_scattered"),
        })
    return rows


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def report(paths: list[str]) -> str:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    lines = [
        "# Per-trial overhead at scale (issue 22)", "",
        "Written by `benchmarks/trial_overhead.py report` from the JSON files of its `measure` "
        "runs (commands in the script's docstring). Overhead = the record's "
        "`duration_seconds` minus prepare, fit, predict and recommend seconds (so metric "
        "computation and the once-per-worker warm-up count as overhead). *before*: `main`, "
        "each worker loads the dataset cache and takes the split from the results store; "
        "*after*: the column data store (docs/data-store.md). Load / split / take / verify: "
        "the record's `data_delivery` (after only).", "",
        "| data | code | trial | trial s | timed stages s | overhead s | load s | split s | "
        "take s | verify s | NDCG@10 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in runs:
        for row in summary(m):
            lines.append(
                f"| `{m['dataset']}` | {m['label']} | {row['trial']} | {_f(row['duration'])} | "
                f"{_f(row['timed'])} | **{_f(row['overhead'])}** | {_f(row['load'], 2)} | "
                f"{_f(row['split'], 2)} | {_f(row['take'], 2)} | {_f(row['verify'], 2)} | "
                f"{_f(row['ndcg'], 4)} |")
    lines += [
        "", "## Memory of the data stages", "",
        "A fresh process of the checkout runs the worker's data stages alone (load the dataset, "
        "the split's rows, copy train and test rows). Peak = VmHWM at the end minus VmRSS "
        "after the imports; RSS counts the mapped store pages this process touched "
        "(file-backed, shared, dropped after each column is copied).", "",
        "| data | code | raw columns GiB | data-stage peak GiB | peak / raw | RSS anon at end "
        "GiB | load s | split s | take s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in runs:
        p = m["probe"]
        peak = (p["after"]["VmHWM"] - p["before"]["VmRSS"]) / 1024
        raw = p["raw_mb"] / 1024
        lines.append(
            f"| `{m['dataset']}` | {m['label']} | {raw:.2f} | {peak:.2f} | {peak / raw:.2f} | "
            f"{p['after'].get('RssAnon', 0) / 1024:.2f} | {p['load_s']:.1f} | "
            f"{p['split_s']:.1f} | {p['take_s']:.1f} |")
    loads = ", ".join(f"{m['label']} {m['dataset'].split('ratings=')[-1].split(',')[0]}: "
                      f"{m['other_cpus_load'][0]:.1f}" for m in runs)
    lines += ["", f"Load average (1 min) at the end of each measurement: {loads}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--python", default=sys.executable)
    m.add_argument("--dataset", required=True)
    m.add_argument("--results", required=True)
    m.add_argument("--label", required=True)
    m.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("json", nargs="+")
    args = ap.parse_args()
    if args.cmd == "measure":
        measure(args)
    else:
        print(report(args.json))


if __name__ == "__main__":
    main()
