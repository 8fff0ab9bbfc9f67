"""A markdown section for one timed ``bench run`` at scale: its trials from the records (stage
seconds, the worker's peak RSS, NDCG@10) and the whole run's wall time and peak RSS from
``/usr/bin/time -v``'s log.  Reads stored results only.

    /usr/bin/time -v python -m bench run --suite scale ... --results DIR > LOG 2>&1
    python benchmarks/scale_runs.py --results DIR --time-log LOG --title "..." \
        --command "..." >> results/scale_runs.md
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bench.execution import record


def run_totals(log: str) -> tuple[str, float]:
    """(wall clock as printed, peak RSS GiB of the largest process) from ``time -v``."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", log)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    if not wall or not rss:
        raise SystemExit("the log has no /usr/bin/time -v summary")
    return wall.group(1), int(rss.group(1)) / 2**20


def section(results: Path, log: str | None, title: str, command: str) -> str:
    lines = [f"## {title}", "", f"`{command}`", ""]
    if log is not None:  # without a log (a run stopped early): the trials alone
        wall, rss = run_totals(log)
        lines += [
            f"Whole run (data generation or parsing, cache, splits, every trial, leaderboard): "
            f"**{wall}** wall, peak RSS **{rss:.1f} GiB** (the largest process of the run).",
            "",
        ]
    lines += [
        "| adapter | split | threads | prepare s | fit s | recommend s | trial s | "
        "worker peak RSS GiB | train ratings | NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record.records(results):
        lines.append(
            f"| {r.adapter} | {r.split_label} | {r.threads} | "
            f"{r.get('prepare_seconds') or 0:.1f} | {r.get('fit_seconds') or 0:.1f} | "
            f"{r.get('recommend_seconds') or 0:.1f} | {r.get('duration_seconds') or 0:.1f} | "
            f"{(r.get('peak_rss_mb') or 0) / 1024:.2f} | {r.get('n_train') or 0:,} | "
            f"{r.metrics.get('ndcg@10', float('nan')):.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--time-log", type=Path, help="/usr/bin/time -v's log of the run")
    p.add_argument("--title", required=True)
    p.add_argument("--command", required=True)
    args = p.parse_args()
    log = args.time_log.read_text() if args.time_log else None
    print(section(args.results, log, args.title, args.command))


if __name__ == "__main__":
    main()
