"""One bar per leaderboard row: the mean metric with its 95% interval."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import RowKey, by_row
from bench.reporting.text import direction, metric_label

#: Significance results of one table's rows on a metric (``significance.mark_table``
#: bound to the results dirs): ``mark(records, metric) -> {row key: result}``.
Mark = Callable[[list[dict], str], Mapping[RowKey, Any]]


def metric_bars(
    records: list[dict], metric: str, path: Path, mark: Mark | None = None
) -> Path | None:
    """Horizontal bars of one table's rows: mean ``metric`` and its 95% interval; with
    ``mark`` (significance results per row key of these records), rows not significantly
    different from the best are hatched."""
    recs = common.ok_test(records)
    stats = common.row_stats(by_row(recs), metric)
    if not stats:
        return None
    higher = common.higher_better(metric)
    keys = sorted(stats, key=lambda k: (-stats[k][0] if higher else stats[k][0], k))
    names = common.row_names(keys)
    colours_by_lib = common.library_colours([k.adapter for k in keys])
    marks = mark(recs, metric) if mark is not None else {}
    means = np.array([stats[k][0] for k in keys])
    halves = np.array([stats[k][1] for k in keys])
    fig = common.new_figure(9.0, 1.4 + 0.27 * len(keys))
    ax = fig.add_subplot()
    y = np.arange(len(keys))
    for i, k in enumerate(keys):
        res = marks.get(k)
        ax.barh(
            y[i], means[i], color=colours_by_lib[k.library], height=0.7,
            hatch="///" if res is not None and res.tied_with_best else None,
            edgecolor="black" if res is not None and res.is_best else "white", linewidth=0.8,
        )
    half0 = np.where(np.isnan(halves), 0, halves)
    ax.errorbar(means, y, xerr=half0, fmt="none", ecolor="black", elinewidth=0.9, capsize=2.5)
    pad = 0.01 * max(np.nanmax(np.abs(means) + half0), 1e-12)
    for i in range(len(keys)):
        ax.text(means[i] + half0[i] + pad, y[i], f"{means[i]:.4f}", va="center", fontsize=7)
    ax.set_xlim(right=np.nanmax(means + half0) * 1.1 + pad)
    ax.set_yticks(y, [names[k] for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric_label(metric)} ({direction(metric)}), {_interval_text(recs, metric)}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"{metric_label(metric)} by model\n{common.table_title(recs[0])}", fontsize=10)
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=lib) for lib, c in colours_by_lib.items()]
    if any(r.is_best for r in marks.values()):
        handles.append(Patch(facecolor="white", edgecolor="black", label="best (reference)"))
    if any(r.tied_with_best for r in marks.values()):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///",
                             label="not significantly\ndifferent from best"))
    common.outside_legend(ax, handles=handles)
    return common.save(fig, path)


def _interval_text(recs: list[dict], metric: str) -> str:
    """What the error bars are, as in the leaderboard (see ``record.aggregate``)."""
    rows = by_row(recs).values()
    seeds = max((len({r.get("seed") for r in rs}) for rs in rows), default=1)
    if seeds > 1:
        return f"mean over up to {seeds} seeds ± 95% interval (Student-t over seeds)"
    folds = max((len({r["fold"] for r in rs}) for rs in rows), default=1)
    if folds > 1:
        return f"mean over {folds} folds ± 95% interval (Student-t over folds)"
    over = "users" if "@" in metric else "test ratings"
    return f"± 95% interval over {over}"
