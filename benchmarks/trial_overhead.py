"""Per-trial overhead at scale (issue 22): a trial's wall time minus its timed stages
(prepare, fit, predict, recommend), for cheap trials on large data, and the peak memory of
the data stages (load the dataset, take the split, copy the train / test rows) against the
raw bytes of the (user, item, rating, time) columns.

``measure`` runs, with the Python of the checkout to measure (``main`` for "before", this
branch for "after"), two baseline.Popularity trials (random 80/20, two threads: the
``scale`` suite's settings; NDCG@10, then NDCG@10 and @20, so two trials on one split) in
one serial worker, so the first trial pays the worker's cold start and the second shows
the steady state; then a fresh
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
adapters = ["baseline.Popularity"]
metrics = {{ ks = [10], threshold = "none" }}
time_limit = 1800
[[run]]
datasets = [{dataset!r}]
splits = [{{ method = "random", test_fraction = 0.2, seed = 0 }}]
adapters = ["baseline.Popularity"]
metrics = {{ ks = [10, 20], threshold = "none" }}
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
name, results, store = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if store:
    from bench.execution import datastore
    datastore.use_store(name, store)
spec = trial.TrialSpec.from_dict({"dataset": name, "fold": 0, "adapter": "baseline.Popularity",
                                  "split": {"method": "random", "test_fraction": 0.2, "seed": 0}})
before = status()
t0 = time.perf_counter()
ds = trial.load_dataset(name)
t1 = time.perf_counter()
fold = trial.stage_rows(spec, ds, results)
t2 = time.perf_counter()
if hasattr(trial, "fold_ratings"):  # fold rows mapped from their own store files
    train, test = trial.fold_ratings(spec, ds, fold)
else:
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
    """Trial seconds minus its timed stages (metric computation counts as overhead)."""
    timed = sum(rec.get(k) or 0.0 for k in ("prepare_seconds", "fit_seconds",
                                            "predict_seconds", "recommend_seconds"))
    return rec["duration_seconds"] - timed


def metric_seconds(rec: dict) -> float | None:
    """The record's metric computation: ``evaluate_seconds`` minus predict and recommend
    (None for records without ``evaluate_seconds``, schema_minor < 3)."""
    if rec.get("evaluate_seconds") is None:
        return None
    return rec["evaluate_seconds"] - (rec.get("predict_seconds") or 0.0) - (
        rec.get("recommend_seconds") or 0.0)


def summary(m: dict, metrics_of: dict[str, float] | None = None) -> list[dict]:
    """One row per trial; ``metrics_of`` (adapter -> metric seconds) stands in for records
    without ``evaluate_seconds`` (main's), whose evaluation code and data are the same."""
    rows = []
    for i, rec in enumerate(m["records"]):
        d = rec.get("data_delivery") or {}
        metrics = metric_seconds(rec)
        estimated = metrics is None and metrics_of is not None and rec["adapter"] in metrics_of
        if estimated:
            metrics = metrics_of[rec["adapter"]]
        data = None
        if d.get("load_seconds") is not None:
            data = d["load_seconds"] + d["split_seconds"] + d["take_seconds"]
        rows.append({
            "trial": f"{i + 1} ({'cold' if i == 0 else 'warm'} worker) {rec['adapter']}",
            "adapter": rec["adapter"], "duration": rec["duration_seconds"],
            "overhead": overhead(rec), "timed": rec["duration_seconds"] - overhead(rec),
            "metrics": metrics, "estimated": estimated,
            "net": None if metrics is None else overhead(rec) - metrics,
            "data": data, "verify": d.get("verify_seconds"),
            "warmup": rec.get("warmup_seconds") or 0.0,
            "status": rec["status"], "ndcg": (rec.get("metrics") or {}).get("ndcg@10"),
            "bytes_scattered": d.get("bytes_scattered"),
        })
    return rows


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def report(paths: list[str], note: str = "") -> str:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    # metric seconds per (data, adapter) from the records that have them (this branch's)
    metrics_of: dict[str, dict[str, float]] = {}
    for m in runs:
        for row in summary(m):
            if row["metrics"] is not None:
                metrics_of.setdefault(m["dataset"], {})[row["adapter"]] = row["metrics"]
    lines = [
        "# Per-trial overhead at scale (issue 22)", "", *([note, ""] if note else []),
        "Written by `benchmarks/trial_overhead.py report` from the JSON files of its `measure` "
        "runs (commands in the script's docstring). *before*: `main`, each worker loads the "
        "dataset cache and takes the split from the results store; *after*: the column data "
        "store ([docs/data-store.md](../docs/data-store.md)). One serial worker runs two "
        "trials: the first pays the worker's start (imports, numba caches, the warm-up fit), "
        "the second is the steady state.", "",
        "* timed = prepare + fit + predict + recommend seconds of the record;",
        "* overhead = the record's `duration_seconds` minus timed (metric computation "
        "included);",
        "* metrics = `evaluate_seconds` minus predict and recommend (after's records; before's "
        "records do not have it, so after's figure for the same data and adapter stands in, "
        "marked ~: the evaluation code and the data are the same);",
        "* net overhead = overhead minus metrics: what the issue's target counts;",
        "* data = load + split + take seconds from the record's `data_delivery` (after only), "
        "verify = the part of load spent checking checksums (once per worker process).", "",
        "| data | code | trial | trial s | timed s | overhead s | metrics s | net overhead s | "
        "data s | verify s | warm-up s | NDCG@10 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in runs:
        for row in summary(m, metrics_of.get(m["dataset"])):
            mark = "~" if row["estimated"] else ""
            lines.append(
                f"| {_rows(m)} | {m['label']} | {row['trial']} | {_f(row['duration'])} | "
                f"{_f(row['timed'])} | {_f(row['overhead'])} | {mark}{_f(row['metrics'])} | "
                f"**{mark}{_f(row['net'])}** | {_f(row['data'], 2)} | {_f(row['verify'], 2)} | "
                f"{_f(row['warmup'])} | {_f(row['ndcg'], 4)} |")
    lines += [
        "", "## Memory of the data stages", "",
        "A fresh process of the checkout runs the worker's data stages alone (load the dataset, "
        "the split's rows, copy train and test rows). Peak = VmHWM at the end minus VmRSS "
        "after the imports; RSS counts the mapped store pages this process touched "
        "(file-backed, shared, dropped after each column is copied). Raw = the bytes of the "
        "user, item, rating and time columns.", "",
        "| data | code | raw columns GiB | data-stage peak GiB | peak / raw | RSS anon at end "
        "GiB | load s | split s | take s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in runs:
        p = m["probe"]
        peak = (p["after"]["VmHWM"] - p["before"]["VmRSS"]) / 1024
        raw = p["raw_mb"] / 1024
        lines.append(
            f"| {_rows(m)} | {m['label']} | {raw:.2f} | {peak:.2f} | {peak / raw:.2f} | "
            f"{p['after'].get('RssAnon', 0) / 1024:.2f} | {p['load_s']:.1f} | "
            f"{p['split_s']:.1f} | {p['take_s']:.1f} |")
    lines += ["", "Datasets: " + "; ".join(sorted({f"{_rows(m)} = `{m['dataset']}`"
                                                    for m in runs})) + ".", ""]
    loads = ", ".join(f"{_rows(m)} {m['label']}: {m['other_cpus_load'][0]:.1f}" for m in runs)
    lines += [f"Load average (1 min) at the end of each measurement (2 cores; other "
              f"processes' load included): {loads}.", ""]
    return "\n".join(lines)


def _rows(m: dict) -> str:
    n = int(m["dataset"].split("ratings=")[1].split(",")[0])
    return f"{n / 1e6:.0f}M"


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
    r.add_argument("--note", default="", help="a paragraph under the title (the machine)")
    args = ap.parse_args()
    if args.cmd == "measure":
        measure(args)
    else:
        print(report(args.json, args.note))


if __name__ == "__main__":
    main()
