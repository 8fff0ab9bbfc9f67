"""Time and peak memory of every stage of a run, at 1M to 100M ratings.

For each size, synthetic data is written in a real release's file layout (``bench
write-layout``: ML-32M's ``ratings.csv`` up to 32M ratings, Netflix Prize's
``combined_data_*.txt`` at 100M) and then goes through recbench's own path, each stage in a
fresh process whose peak RSS is read from ``wait4``:

* ``load``: parse the layout through the release's registry entry and write the dataset
  cache (``load (cached)``: the same load again, from the cache);
* ``split``: the random 80/20 assignment (``temporal`` too);
* ``prepare`` / ``fit`` / ``recommend``: from the records of a ``bench run`` of
  baseline.Popularity and baseline.Random (full-catalogue top-10 for every user; the
  record's ``peak_rss_mb`` is the trial worker's);
* ``significance`` + ``report``: ``bench report`` of those records (paired bootstrap over
  all users, leaderboard, no figures), and ``plots`` with figures.

Shapes: up to 32M ratings ML-32M-shaped (users in proportion, 200,948 at 32M; items
84,432 x sqrt(ratings / 32M)); 100M Netflix-shaped (480,189 x 17,770).  Two threads.

    python benchmarks/scale_stages.py [--sizes 1,4,16,32,100] [--work DIR]

writes ``results/scale_stages.md`` (and its measurements in ``.json``: ``--replot`` redraws
the table and ``results/plots/scale_stages.png`` from them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2


def shape(millions: float) -> tuple[int, int, int, str]:
    n = int(round(millions * 1_000_000))
    if millions >= 100:
        return 480_189, 17_770, 100_480_507, "netflix-prize"
    users = max(int(round(200_948 * n / 32_000_000)), 100)
    items = max(int(round(84_432 * math.sqrt(n / 32_000_000))), 100)
    return users, items, n, "ml-32m"


def run_stage(label: str, argv: list[str], env: dict, log) -> tuple[float, float, str]:
    """Run ``argv``; (wall seconds, peak RSS MiB of the process tree's main process, out)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=ROOT)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{out[-3000:]}")
    rss = usage.ru_maxrss / 1024
    log(f"  {label}: {seconds:,.1f} s, {rss:,.0f} MiB")
    return seconds, rss, out


PY = [sys.executable, "-c"]
LOAD = """import sys, time
from bench import load_dataset
t = time.perf_counter(); d = load_dataset(sys.argv[1])
print("SECONDS", time.perf_counter() - t)"""
SPLIT = """import sys, json
from bench import load_dataset
from bench.splitting import splits
d = load_dataset(sys.argv[1])
spec = splits.SplitSpec.from_dict(json.loads(sys.argv[2]))
import time; t = time.perf_counter(); splits.assign(d.ratings, spec)
print("SECONDS", time.perf_counter() - t)"""


def measure(millions: float, work: Path, log) -> dict:
    users, items, n, layout = shape(millions)
    # the popularity-only generator that results/scale_stages.md was measured with
    data = f"synthetic-popularity:users={users},items={items},ratings={n},seed=0"
    out = work / f"{millions:g}M"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = dict(os.environ, RECBENCH_CACHE_DIR=str(out / "cache"),
               NUMBA_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
    row: dict = {"ratings": n, "users": users, "items": items, "layout": layout}
    log(f"{millions:g}M ratings: {users:,} users x {items:,} items, {layout} layout")
    sec, rss, text = run_stage("write layout", [sys.executable, "-m", "bench", "write-layout",
                               layout, "--data", data, "--out", str(out / "files")], env, log)
    row["write_layout"] = (sec, rss)
    name = text.strip().splitlines()[-1]
    env["RECBENCH_DATASETS_PATH"] = str(out / "files")
    for key, label in (("load", "load"), ("load_cached", "load (cached)")):
        sec, rss, text = run_stage(label, PY + [LOAD, name], env, log)
        row[key] = (float(text.split("SECONDS")[-1]), rss)
    for method in ("random", "temporal"):
        split = json.dumps({"method": method, "test_fraction": 0.2, "seed": 0})
        sec, rss, text = run_stage(f"split {method}", PY + [SPLIT, name, split], env, log)
        inner = float(text.split("SECONDS")[-1])
        row[f"split_{method}"] = (inner, rss)
    suite = out / "stages.toml"
    suite.write_text(
        f'[[run]]\ndatasets = ["{name}"]\n'
        'splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]\n'
        'adapters = ["baseline.Popularity", "baseline.Random"]\n'
        'metrics = { ks = [10], threshold = "none" }\ntime_limit = 3600\n'
    )
    results = out / "results"
    sec, rss, _ = run_stage("bench run", [sys.executable, "-m", "bench", "run", "--suite",
                            str(suite), "--results", str(results), "--threads", str(THREADS),
                            "--no-report"], env, log)
    row["run_wall"] = (sec, rss)
    recs = [json.loads(line) for line in (results / "runs/stages.jsonl").open()]
    for rec in recs:
        if rec["status"] != "ok":
            raise SystemExit(f"{rec['adapter']}: {rec['status']} {rec.get('error')}")
        short = rec["adapter"].split(".")[-1].lower()
        for stage in ("prepare", "fit", "recommend"):
            row[f"{stage}_{short}"] = (rec[f"{stage}_seconds"], rec["peak_rss_mb"])
    row["report"] = run_stage("report (significance + leaderboard)", [
        sys.executable, "-m", "bench", "report", "--results", str(results), "--no-plots",
        "--output", str(out / "LEADERBOARD.md")], env, log)[:2]
    row["report_plots"] = run_stage("report with figures", [
        sys.executable, "-m", "bench", "report", "--results", str(results),
        "--output", str(out / "LEADERBOARD.md")], env, log)[:2]
    shutil.rmtree(out / "files", ignore_errors=True)  # tens of GB at 100M
    shutil.rmtree(out / "cache", ignore_errors=True)
    return row


COLUMNS = [
    ("write_layout", "write layout"), ("load", "load (parse + cache)"),
    ("load_cached", "load (cached)"), ("split_random", "split random"),
    ("split_temporal", "split temporal"), ("prepare_popularity", "prepare"),
    ("fit_popularity", "fit Popularity"), ("recommend_popularity", "recommend Popularity"),
    ("recommend_random", "recommend Random"), ("report", "significance + leaderboard"),
    ("report_plots", "report with figures"),
]


def write_outputs(rows: list[dict], md: Path, png: Path) -> None:
    lines = [
        "# Time and memory per stage, 1M to 100M ratings",
        "",
        f"`python benchmarks/scale_stages.py` on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {THREADS} threads; seconds / peak RSS MiB of the stage's "
        "process (prepare / fit / recommend: the trial worker's peak).  Up to 32M ratings "
        "ML-32M-shaped data in ML-32M's ratings.csv layout; 100M Netflix-shaped in Netflix's "
        "combined_data layout.  Recommend = full-catalogue top-10 for every test user.",
        "",
        "| stage | " + " | ".join(f"{r['ratings'] / 1e6:,.1f}M ({r['users']:,} x "
                                   f"{r['items']:,})" for r in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for key, label in COLUMNS:
        cells = []
        for r in rows:
            sec, rss = r.get(key, (None, None))
            cells.append("" if sec is None else f"{sec:,.1f} s / {rss:,.0f} MiB")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    md.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")  # for --replot

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = [r["ratings"] / 1e6 for r in rows]
    colours = plt.get_cmap("tab20").colors  # 11 stages: no colour twice
    for n, (key, label) in enumerate(COLUMNS):
        if not all(key in r for r in rows):
            continue
        style = dict(marker="os^"[n % 3], color=colours[(2 * n) % 20 if n < 10 else 1],
                     label=label)
        ax_t.plot(x, [max(r[key][0], 1e-3) for r in rows], **style)
        ax_m.plot(x, [r[key][1] / 1024 for r in rows], **style)
    ax_t.set_title("seconds below 1 ms drawn at 1 ms", fontsize=8)
    for ax, what in ((ax_t, "seconds"), (ax_m, "peak RSS (GiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ratings (millions)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=7, loc="upper left")
    fig.suptitle("recbench per-stage time and memory")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,4,16,32,100", help="millions of ratings")
    p.add_argument("--work", type=Path, default=Path("/tmp/recbench-scale-stages"))
    p.add_argument("--out", type=Path, default=ROOT / "results/scale_stages.md")
    p.add_argument("--plot", type=Path, default=ROOT / "results/plots/scale_stages.png")
    p.add_argument("--replot", action="store_true",
                   help="redraw the table and plot from the stored measurements (.json)")
    args = p.parse_args()
    if args.replot:
        write_outputs(json.loads(args.out.with_suffix(".json").read_text()), args.out, args.plot)
        return

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows = []
    for size in (float(s) for s in args.sizes.split(",")):
        rows.append(measure(size, args.work, log))
        write_outputs(rows, args.out, args.plot)  # partial tables survive a later failure
    log(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
