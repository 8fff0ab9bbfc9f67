"""Quality against fit time, one point per leaderboard row, the Pareto front marked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import by_row
from bench.reporting.figures.layout import place_labels, plain_log_ticks
from bench.reporting.text import direction, metric_label

RING_SIZE = 170.0  # marker area (points^2) of the ring around Pareto-front points


def pareto_front(cost: np.ndarray, quality: np.ndarray, higher_better: bool) -> np.ndarray:
    """Boolean mask of points no other point beats on both cost (lower) and quality."""
    q = np.asarray(quality, np.float64) * (1.0 if higher_better else -1.0)
    c = np.asarray(cost, np.float64)
    order = np.lexsort((-q, c))  # by cost, best quality first among equal costs
    best_before = np.maximum.accumulate(np.r_[-np.inf, q[order]])[:-1]
    mask = np.zeros(len(q), bool)
    mask[order] = q[order] > best_before
    return mask


def quality_vs_time(records: list[dict], metric: str, path: Path) -> Path | None:
    """Scatter of one table's rows: quality against fit time (log), Pareto front marked."""
    recs = common.ok_test(records)
    stats = common.row_stats(by_row(recs), metric)
    stats = {k: v for k, v in stats.items() if not math.isnan(v[2])}
    if len(stats) < 2:
        return None
    keys = sorted(stats)
    quality = np.array([stats[k][0] for k in keys])
    raw_time = np.array([stats[k][2] for k in keys])
    # Fit times are stored rounded to 1 us, so 0 means "under 1 us": a log axis needs a
    # positive place for it: 1 us, or left of the fastest measured fit if that is faster.
    positive = raw_time[raw_time > 0]
    floor = min(1e-6, positive.min() / 2) if positive.size else 1e-6
    fit = np.where(raw_time > 0, raw_time, floor)
    higher = common.higher_better(metric)
    front = pareto_front(fit, quality, higher)
    names = common.row_names(keys, short=True)
    colours_by_lib = common.library_colours([k.adapter for k in keys])
    colours = [colours_by_lib[k.library] for k in keys]

    # Far outliers (e.g. a random predictor's RMSE) would flatten everyone else: clip them
    # to the axis edge, drawn as triangles with their value in the label.
    q1, q3 = np.percentile(quality, [25, 75])
    spread = max(q3 - q1, 1e-12)
    lo_lim, hi_lim = q1 - 6 * spread, q3 + 6 * spread
    inlier = (quality >= lo_lim) & (quality <= hi_lim)
    shown = quality.copy()
    if not inlier.all():
        span = quality[inlier].max() - quality[inlier].min() or abs(quality[inlier].max()) or 1
        top = quality[inlier].max() + 0.12 * span
        bottom = quality[inlier].min() - 0.12 * span
        shown = np.clip(quality, bottom, top)

    fig = common.new_figure(10.5, 6.5)
    ax = fig.add_subplot()
    for lib, colour in colours_by_lib.items():
        sel = np.array([k.library == lib for k in keys])
        ax.scatter(fit[sel & inlier], shown[sel & inlier], s=36, color=colour, label=lib,
                   zorder=3)
        for clipped, mark in ((quality > hi_lim, "^"), (quality < lo_lim, "v")):
            ax.scatter(fit[sel & clipped], shown[sel & clipped], s=48, color=colour,
                       marker=mark, zorder=3)
    ax.scatter(fit[front], shown[front], s=RING_SIZE, facecolors="none", edgecolors="black",
               linewidths=1.1, zorder=4, label="Pareto front")
    order = np.argsort(fit[front])
    fx, fy = fit[front][order], shown[front][order]
    # The front as a staircase: from each point across to the next one's time, then to
    # the next one's quality.
    step_x = np.repeat(fx, 2)[1:]
    step_y = np.repeat(fy, 2)[:-1]
    ax.plot(step_x, step_y, color="black", lw=1.0, ls="--", alpha=0.6, zorder=2)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis, fit)
    ax.set_xlabel("fit time per fold, excluding data conversion (s, log scale)")
    ax.set_ylabel(f"{metric_label(metric)} ({direction(metric)})")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(f"{metric_label(metric)} vs fit time\n{common.table_title(recs[0])}", fontsize=10)
    # Room on the right (log space) for the labels of the slowest points.
    span = max(math.log10(fit.max() / fit.min()), 1.0)
    ax.set_xlim(fit.min() / 10 ** (0.08 * span), fit.max() * 10 ** (0.22 * span))
    ax.margins(y=0.1)
    labels = []
    for i, k in enumerate(keys):
        notes = [] if inlier[i] else [f"{quality[i]:.3g}, off scale"]
        if raw_time[i] <= 0:
            notes.append("fit < 1 µs")
        labels.append(f"{names[k]} ({'; '.join(notes)})" if notes else names[k])
    common.outside_legend(ax, title="library", title_fontsize=8)
    # Label the front first, then the best models, so important labels sit closest.
    priority = np.lexsort((-(quality if higher else -quality), ~front))
    ring = math.sqrt(RING_SIZE) / 2  # scatter sizes are areas in points^2
    place_labels(ax, fit, shown, labels, colours, priority, np.where(front, ring + 1, 3.5),
                 lines=[(step_x, step_y)])
    return common.save(fig, path)
