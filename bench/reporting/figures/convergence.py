"""A metric per training iteration from ``record["curve"]``, one colour per row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import by_row
from bench.reporting.text import direction, metric_label


def convergence(records: list[dict], path: Path) -> Path | None:
    """Metric per iteration from ``record["curve"]``: test solid, validation dashed."""
    recs = [r for r in common.ok_test(records) if isinstance(r.get("curve"), dict)]
    if not recs:
        return None
    rows = by_row(recs)
    names = common.row_names(list(rows))
    fig = common.new_figure(8.5, 5.0)
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    metrics = set()
    for i, (key, rs) in enumerate(sorted(rows.items())):
        colour = cmap(i % 10)
        for j, r in enumerate(sorted(rs, key=lambda r: r["fold"])):
            curve = r["curve"]
            metrics.add(curve.get("metric", "metric"))
            it = np.asarray(curve.get("iteration", []), dtype=np.float64)
            for series, style in (("test", "-"), ("validation", "--")):
                ys = curve.get(series)
                if ys is None or len(ys) != len(it):
                    continue
                label = f"{names[key]} · {series}" if j == 0 else None
                ax.plot(it, np.asarray(ys, np.float64), ls=style, color=colour, lw=1.2,
                        alpha=0.9 if j == 0 else 0.45, label=label)
    metric = metrics.pop() if len(metrics) == 1 else "metric"
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{metric_label(metric)} ({direction(metric)})" if metric != "metric"
                  else "metric")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Convergence (one line per fold)\n{common.table_title(recs[0])}", fontsize=10)
    common.outside_legend(ax)
    return common.save(fig, path)
