"""Label layout for scatter plots: labels that overlap neither each other, the markers nor
drawn lines; plain tick labels on short log axes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def plain_log_ticks(axis, values: np.ndarray) -> None:
    """On a log axis spanning under two decades, label ticks 0.4, 0.6 rather than 4x10^-1."""
    values = np.asarray(values, np.float64)
    if values.size and values.min() > 0 and values.max() / values.min() < 100:
        from matplotlib.ticker import FuncFormatter

        def label(v: float, _pos: int) -> str:
            lead = round(v / 10 ** math.floor(math.log10(v))) if v > 0 else 0
            return f"{v:g}" if lead in (1, 2, 3, 5) else ""  # sparse minor labels

        axis.set_major_formatter(FuncFormatter(label))
        axis.set_minor_formatter(FuncFormatter(label))


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap areas of box ``a`` (x0, y0, x1, y1) with boxes ``b`` (n x 4)."""
    if len(b) == 0:
        return np.zeros(0)
    w = np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0])
    h = np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def place_labels(
    ax, xs: np.ndarray, ys: np.ndarray, texts: list[str], colours: list, order: np.ndarray,
    marker_radius: np.ndarray | float = 4.5, fontsize: float = 8.0,
    lines: Sequence[tuple[np.ndarray, np.ndarray]] = (),
) -> None:
    """Annotate points so labels overlap neither each other nor the markers.

    Greedy: in ``order`` (most important first), each label takes the first candidate
    offset around its point (rings of growing radius) whose box is free and inside the
    axes; if none is, the least-overlapping one.  Labels away from their point get a thin
    leader line.  ``lines`` (x, y polylines in data units) are obstacles too, so labels
    do not sit on them.  Sizes are measured once per label, so the search is arithmetic.
    """
    fig = ax.figure
    ax.get_xlim(), ax.get_ylim()  # settle autoscaled limits so transData is final
    renderer = fig.canvas.get_renderer()
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    axbox = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0  # pixels per typographic point
    half = np.broadcast_to(np.asarray(marker_radius, np.float64) * px, (len(xs),))
    markers = np.column_stack(
        [pts[:, 0] - half, pts[:, 1] - half, pts[:, 0] + half, pts[:, 1] + half]
    )
    for lx, ly in lines:  # sample each polyline every few pixels into tiny boxes
        vertices = ax.transData.transform(np.column_stack([lx, ly]))
        for (x0, y0), (x1, y1) in zip(vertices[:-1], vertices[1:], strict=True):
            n = max(2, int(math.hypot(x1 - x0, y1 - y0) / 3))
            sx, sy = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
            markers = np.vstack([markers, np.column_stack([sx - 1, sy - 1, sx + 1, sy + 1])])
    sizes = []
    for t in texts:
        probe = ax.text(0, 0, t, fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        sizes.append((bb.width, bb.height))
        probe.remove()
    angles = np.deg2rad([0, 180, 30, 150, -30, -150, 60, 120, -60, -120, 90, -90])
    rings = np.array([2.5, 11.0, 23.0, 37.0, 55.0]) * px  # beyond the marker's own radius
    placed = np.empty((0, 4))
    for i in order:
        w, h = sizes[i]
        best = None
        radii = half[i] + rings
        others = np.delete(markers, i, axis=0)
        for r in radii:
            for a in angles:
                cx, cy = pts[i, 0] + r * math.cos(a), pts[i, 1] + r * math.sin(a)
                # Anchor the box on the side facing the point, so it grows away from it.
                x0 = cx if math.cos(a) > 0.2 else cx - w if math.cos(a) < -0.2 else cx - w / 2
                y0 = cy if math.sin(a) > 0.2 else cy - h if math.sin(a) < -0.2 else cy - h / 2
                box = np.array([x0, y0, x0 + w, y0 + h])
                outside = (
                    box[0] < axbox.x0 or box[2] > axbox.x1 or box[1] < axbox.y0
                    or box[3] > axbox.y1
                )
                cost = _overlap(box, placed).sum() + _overlap(box, others).sum()
                cost += 1e6 if outside else 0.0
                if best is None or cost < best[0]:
                    best = (cost, box, r)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, box, r = best
        data = ax.transData.inverted().transform([[box[0], box[1]]])[0]
        ax.annotate(
            texts[i], xy=(xs[i], ys[i]), xytext=data, textcoords="data",
            fontsize=fontsize, color=colours[i], ha="left", va="bottom",
            arrowprops=(
                dict(arrowstyle="-", color=colours[i], lw=0.6, alpha=0.7, shrinkA=0, shrinkB=3)
                if r > radii[0] else None
            ),
        )
        placed = np.vstack([placed, box])
