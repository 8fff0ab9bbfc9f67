"""A metric by band of users' train-set size (``record["bands"]``), one line per row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import aggregate, by_row
from bench.reporting.text import direction, metric_label


def activity_bands(
    records: list[dict], metric: str, path: Path, top: int = common.TOP_LINES
) -> Path | None:
    """``metric`` by band of users' train-set size for the ``top`` best rows of a table."""
    recs = [r for r in common.ok_test(records) if metric in (r.get("bands") or {})]
    if not recs:
        return None
    rows = by_row(recs)
    edges = recs[0]["bands"]["edges"]
    n_users = recs[0]["bands"]["n_users"]
    n_bands = len(edges) - 1
    series = {}
    for key, rs in rows.items():
        # Folds of k-fold can band users slightly differently: average folds that share
        # the first record's band edges, so every point means the same band.
        vals = [r["bands"][metric] for r in rs
                if r["bands"]["edges"] == edges and len(r["bands"][metric]) == n_bands]
        if vals:
            series[key] = np.mean(np.array(vals, dtype=np.float64), axis=0)
    if not series or n_bands < 1:
        return None
    overall = {k: aggregate(rows[k], metric)[0] for k in series}
    sign = -1 if common.higher_better(metric) else 1
    keys = sorted(series, key=lambda k: (sign * np.nan_to_num(overall[k], nan=-sign * np.inf),
                                         k))[:top]
    names = common.row_names(keys)
    fig = common.new_figure(9.0, 5.0)
    ax = fig.add_subplot()
    x = np.arange(n_bands)
    for key in keys:
        ax.plot(x, series[key], marker="o", ms=4, label=names[key])
    ticks = []
    for i in range(n_bands):
        hi = edges[i + 1] if i == n_bands - 1 else edges[i + 1] - 1
        span = f"{edges[i]}" if hi <= edges[i] else f"{edges[i]}–{hi}"
        ticks.append(f"{span}\n({n_users[i]} users)")
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_xlabel("users' train-set size (ratings), quantile bands")
    ax.set_ylabel(f"{metric_label(metric)} ({direction(metric)})")
    ax.grid(True, alpha=0.3)
    shown = f"best {len(keys)} of {len(series)} models" if len(series) > len(keys) else \
        f"{len(keys)} models"
    title = common.table_title(recs[0])
    ax.set_title(f"{metric_label(metric)} by user activity ({shown})\n{title}", fontsize=10)
    common.outside_legend(ax)
    return common.save(fig, path)
