"""Fit time and speed-up against the thread count, for rows run at several counts."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import RowKey, aggregate, by_row
from bench.reporting.figures.layout import plain_log_ticks


def thread_scaling(records: list[dict], path: Path) -> Path | None:
    """Fit time and speed-up against the thread count, for rows run with several counts
    (row keys that differ only in ``threads``)."""
    recs = common.ok_test(records)
    lines: dict[RowKey, dict[int, float]] = defaultdict(dict)
    for key, rs in by_row(recs).items():
        if key.threads is None:
            continue
        fit, _ = aggregate(rs, "fit_seconds", timing=True)
        if not math.isnan(fit) and fit > 0:
            lines[key._replace(threads=None)][int(key.threads)] = fit
    lines = {k: v for k, v in lines.items() if len(v) >= 2}
    if not lines:
        return None
    names = common.row_names(list(lines))
    threads = sorted({t for v in lines.values() for t in v})
    fig = common.new_figure(11.0, 4.8)
    ax_time, ax_speed = fig.subplots(1, 2)
    for key in sorted(lines):
        ts = sorted(lines[key])
        fit = np.array([lines[key][t] for t in ts])
        line = ax_time.plot(ts, fit, marker="o", ms=4, label=names[key])[0]
        ax_speed.plot(ts, fit[0] / fit, marker="o", ms=4, color=line.get_color())
    ax_speed.plot(threads, np.array(threads) / threads[0], color="black", ls="--", lw=1,
                  label="ideal (linear)")
    for ax in (ax_time, ax_speed):
        ax.set_xticks(threads)
        ax.set_xlabel("threads")
        ax.grid(True, alpha=0.3)
    ax_time.set_yscale("log")
    plain_log_ticks(ax_time.yaxis, np.array([f for v in lines.values() for f in v.values()]))
    ax_time.set_ylabel("fit time per fold (s, log scale)")
    ax_speed.set_ylabel(f"speed-up over {threads[0]} thread{'s' if threads[0] > 1 else ''}")
    common.outside_legend(ax_speed, anchor=None)
    fig.suptitle(f"Thread scaling\n{common.table_title(recs[0])}", fontsize=10)
    common.outside_legend(ax_time, anchor=(2.25, 1.0))  # right of the speed-up axes
    return common.save(fig, path)
