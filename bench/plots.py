"""Figures drawn from stored records only (never from live models).

``render_all(records, results_dir)`` writes PNGs under ``<results>/plots/`` and returns
their paths.  Every figure is one small function taking plain records, so new views are
added without touching the others.  Matplotlib is used through ``Figure`` + the Agg canvas
directly (no pyplot, no global backend switch), so importing this module changes nothing
for a caller's own plotting.

Figures and the record fields they read (records are the JSON records of ``bench.trial``;
only ``status == "ok"`` and ``stage == "test"`` records are drawn; a "row" is a leaderboard
row, ``leaderboard.row_key``, averaged over folds as in the leaderboard):

* ``quality_vs_time``: one point per row, x = mean ``fit_seconds`` (log axis), y = mean
  ``metrics[metric]``; the Pareto front (nothing else is both faster and better) is drawn
  as a staircase and its points ringed.  Labels are placed so they do not overlap.
* ``metric_bars``: one bar per row, mean ``metrics[metric]`` with its 95% interval; with
  per-user files, bars not significantly different from the best (``bench.significance``)
  are hatched.
* ``activity_bands``: ``record["bands"] = {"edges": [int, ...], "n_users": [int, ...],
  "<metric>": [float, ...]}`` (``bench.metrics.activity_bands``): the metric per band of
  users' train-set size, one line per row (the best ``top`` rows).
* ``ablation``: ``metrics[metric]`` against a swept ``params[param]``, one line per
  adapter; ``param`` may map adapters to their own name for one quantity (``factors`` /
  ``n_factors`` / ``rank``).  ``sweeps`` finds them: rows of one table whose ``params``
  differ in exactly one parameter (what a suite's ``grid`` produces).
* ``split_sweep``: ``metrics[metric]`` against a split field swept across tables that are
  otherwise equal: ``split.n_reveal`` of ``cold_users`` splits (``cold_start``; the
  record's ``cold_path``, fold-in or refit, is named) or ``split.train_fraction``
  (learning curve; absent = 1.0).
* ``thread_scaling``: fit time and speed-up against ``threads`` for rows that differ only
  in their thread count.
* ``metric_definition``: rank of each row under every (relevance threshold, cut-off K)
  definition of ``ndcg@K`` found for one dataset and split (``metric_options`` tables).
* ``convergence``: ``record["curve"] = {"iteration": [int, ...], "validation": [float,
  ...], "test": [float, ...], "metric": "rmse"}`` (``metric`` optional, either series
  optional); one colour per row, test solid, validation dashed, one line per fold.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench import leaderboard as lb
from bench.metrics import lower_is_better

DPI = 120
RING_SIZE = 170.0  # marker area (points^2) of the ring around Pareto-front points
#: Pareto-front and label drawing assume at most a few dozen rows per table.
TOP_LINES = 8

ResultsDir = Path | str | Sequence[Path | str]


# ---------------------------------------------------------------------------- records


def _ok_test(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok" and r.get("stage", "test") == "test"]


def _rows(records: list[dict]) -> dict[tuple, list[dict]]:
    rows: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        rows[lb.row_key(r)].append(r)
    return rows


def _tables(records: list[dict]) -> dict[tuple, list[dict]]:
    tables: dict[tuple, list[dict]] = defaultdict(list)
    for r in _ok_test(records):
        tables[lb.table_key(r)].append(r)
    return tables


def metric_label(metric: str) -> str:
    """``ndcg@10`` -> ``NDCG@10``; ``rmse`` -> ``RMSE``."""
    if "@" in metric and metric.split("@")[0] in lb.RANKING_NAMES:
        return lb.header_name(metric)
    return metric.upper()


def _direction(metric: str) -> str:
    return "lower is better" if lower_is_better(metric) else "higher is better"


def _higher_better(metric: str) -> bool:
    return not lower_is_better(metric)


def first_ranking_metric(records: list[dict], name: str = "ndcg") -> str | None:
    """``<name>@K`` for the smallest K present in the records (e.g. ``ndcg@10``)."""
    ks = sorted(
        {int(k.split("@")[1]) for r in records for k in (r.get("metrics") or {})
         if k.startswith(f"{name}@")}
    )
    return f"{name}@{ks[0]}" if ks else None


#: How extra row-key fields (after adapter, label, params) read in a name.
_KEY_FIELDS = {3: "threads={}"}


def row_names(keys: list[tuple], short: bool = False) -> dict[tuple, str]:
    """Readable, unique names: the adapter (or only its model part when ``short``), plus
    the parameters that differ between rows of the same adapter, plus a non-default label."""
    by_adapter: dict[str, list[tuple]] = defaultdict(list)
    for k in keys:
        by_adapter[k[0]].append(k)
    # A model part shared by two libraries (scipy.SVD, surprise.SVD) keeps its library.
    model_libs: dict[str, set] = defaultdict(set)
    for adapter in by_adapter:
        model_libs[adapter.split(".", 1)[-1]].add(_library(adapter))
    names = {}
    for adapter, ks in by_adapter.items():
        params = [lb.key_params(k) for k in ks]
        varying = sorted(
            {p for ps in params for p in ps if len({json.dumps(q.get(p)) for q in params}) > 1}
        )
        model = adapter.split(".", 1)[-1]
        base = model if short and len(model_libs[model]) == 1 else adapter
        # Row keys may carry more than (adapter, label, params), e.g. threads, cold path.
        extra_varying = [
            i for i in range(3, max(map(len, ks))) if len({k[i : i + 1] for k in ks}) > 1
        ]
        for k, ps in zip(ks, params, strict=True):
            extra = [f"{p}={ps.get(p)}" for p in varying]
            extra += [
                _KEY_FIELDS.get(i, "{}").format(k[i])
                for i in extra_varying
                if i < len(k) and k[i] not in (None, "")
            ]
            if k[1] != "defaults":
                extra.insert(0, k[1])
            names[k] = f"{base} ({', '.join(extra)})" if extra else base
    return names


def _library(adapter: str) -> str:
    return adapter.split(".", 1)[0]


#: Fixed colour per library so a library looks the same in every figure.
LIBRARY_COLOURS = {
    "baseline": "tab:gray",
    "implicit": "tab:orange",
    "lightfm": "tab:green",
    "recbench": "tab:red",
    "scipy": "tab:purple",
    "surprise": "tab:blue",
}
_SPARE_COLOURS = ("tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black")


def _library_colours(adapters: list[str]) -> dict[str, str]:
    libs = sorted({_library(a) for a in adapters})
    spare = iter(_SPARE_COLOURS * len(libs))
    return {lib: LIBRARY_COLOURS.get(lib) or next(spare) for lib in libs}


def _row_stats(
    rows: dict[tuple, list[dict]], metric: str
) -> dict[tuple, tuple[float, float, float]]:
    """Per row: (mean metric, 95% half-width, mean fit seconds); rows without the metric
    are left out."""
    out = {}
    for key, recs in rows.items():
        mean, half = lb.aggregate(recs, metric)
        if math.isnan(mean):
            continue
        fit, _ = lb.aggregate(recs, "fit_seconds", timing=True)
        out[key] = (mean, half, fit)
    return out


def table_title(rec: dict) -> str:
    seed = rec.get("split", {}).get("seed")
    return (
        f"{rec['dataset']} · {rec.get('split_label', '')} (seed {seed}) · "
        f"{lb.relevance_text(rec.get('metric_options', {}))}"
    )


def table_slug(rec: dict, relevance: bool = True) -> str:
    """File-name stem unique per table: suite group, dataset, split and relevance rule."""
    opts = rec.get("metric_options", {})
    thr = opts.get("threshold")
    rel = "rel-all" if thr is None else f"rel-ge{thr:g}"
    if opts.get("candidates", "all") != "all":
        rel += f"-{opts['candidates']}"
    if opts.get("curve"):  # a convergence run is a table of its own
        rel += f"-curve-{opts['curve']}"
    group = rec.get("group") or rec.get("suite") or ""
    text = f"{group}_{rec['dataset']}_{rec.get('split_label', '')}_seed{rec['split'].get('seed')}"
    text += f"_{rel}" if relevance else ""
    return re.sub(r"[^A-Za-z0-9.=-]+", "-", text).strip("-")


# ---------------------------------------------------------------------------- drawing


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def pareto_front(cost: np.ndarray, quality: np.ndarray, higher_better: bool) -> np.ndarray:
    """Boolean mask of points no other point beats on both cost (lower) and quality."""
    q = np.asarray(quality, np.float64) * (1.0 if higher_better else -1.0)
    c = np.asarray(cost, np.float64)
    order = np.lexsort((-q, c))  # by cost, best quality first among equal costs
    best_before = np.maximum.accumulate(np.r_[-np.inf, q[order]])[:-1]
    mask = np.zeros(len(q), bool)
    mask[order] = q[order] > best_before
    return mask


def _plain_log_ticks(axis, values: np.ndarray) -> None:
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


def quality_vs_time(records: list[dict], metric: str, path: Path) -> Path | None:
    """Scatter of one table's rows: quality against fit time (log), Pareto front marked."""
    recs = _ok_test(records)
    stats = _row_stats(_rows(recs), metric)
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
    higher = _higher_better(metric)
    front = pareto_front(fit, quality, higher)
    names = row_names(keys, short=True)
    colours_by_lib = _library_colours([k[0] for k in keys])
    colours = [colours_by_lib[_library(k[0])] for k in keys]

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

    fig = _figure(10.5, 6.5)
    ax = fig.add_subplot()
    for lib, colour in colours_by_lib.items():
        sel = np.array([_library(k[0]) == lib for k in keys])
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
    _plain_log_ticks(ax.xaxis, fit)
    ax.set_xlabel("fit time per fold, excluding data conversion (s, log scale)")
    ax.set_ylabel(f"{metric_label(metric)} ({_direction(metric)})")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(f"{metric_label(metric)} vs fit time\n{table_title(recs[0])}", fontsize=10)
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
    ax.legend(title="library", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title_fontsize=8, frameon=False)
    # Label the front first, then the best models, so important labels sit closest.
    priority = np.lexsort((-(quality if higher else -quality), ~front))
    ring = math.sqrt(RING_SIZE) / 2  # scatter sizes are areas in points^2
    place_labels(ax, fit, shown, labels, colours, priority, np.where(front, ring + 1, 3.5),
                 lines=[(step_x, step_y)])
    return _save(fig, path)


def metric_bars(
    records: list[dict], metric: str, path: Path, results_dir: ResultsDir | None = None
) -> Path | None:
    """Horizontal bars of one table's rows: mean ``metric`` and its 95% interval."""
    recs = _ok_test(records)
    stats = _row_stats(_rows(recs), metric)
    if not stats:
        return None
    higher = _higher_better(metric)
    keys = sorted(stats, key=lambda k: (-stats[k][0] if higher else stats[k][0], k))
    names = row_names(keys)
    colours_by_lib = _library_colours([k[0] for k in keys])
    marks = {}
    if results_dir is not None:
        from bench import significance

        marks = significance.mark_table(recs, results_dir, metric)
    means = np.array([stats[k][0] for k in keys])
    halves = np.array([stats[k][1] for k in keys])
    fig = _figure(9.0, 1.4 + 0.27 * len(keys))
    ax = fig.add_subplot()
    y = np.arange(len(keys))
    for i, k in enumerate(keys):
        res = marks.get(k)
        ax.barh(
            y[i], means[i], color=colours_by_lib[_library(k[0])], height=0.7,
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
    ax.set_xlabel(f"{metric_label(metric)} ({_direction(metric)}), {_interval_text(recs, metric)}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"{metric_label(metric)} by model\n{table_title(recs[0])}", fontsize=10)
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=lib) for lib, c in colours_by_lib.items()]
    if any(r.is_best for r in marks.values()):
        handles.append(Patch(facecolor="white", edgecolor="black", label="best (reference)"))
    if any(r.tied_with_best for r in marks.values()):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///",
                             label="not significantly\ndifferent from best"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    return _save(fig, path)


def _interval_text(recs: list[dict], metric: str) -> str:
    """What the error bars are, as in the leaderboard (see ``leaderboard.aggregate``)."""
    rows = _rows(recs).values()
    seeds = max((len({r.get("seed") for r in rs}) for rs in rows), default=1)
    if seeds > 1:
        return f"mean over up to {seeds} seeds ± 95% interval (Student-t over seeds)"
    folds = max((len({r["fold"] for r in rs}) for rs in rows), default=1)
    if folds > 1:
        return f"mean over {folds} folds ± 95% interval (Student-t over folds)"
    over = "users" if "@" in metric else "test ratings"
    return f"± 95% interval over {over}"


def _numeric(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _sweep_axis(ax, values: list, label: str) -> dict[str, float]:
    """Set up the x axis for swept values; returns x position per JSON-encoded value.

    Numbers spanning 8x or more get a log2 axis with the swept values as ticks; other
    numbers a linear axis; anything else (booleans, strings) is categorical.
    """
    encoded = sorted({json.dumps(v) for v in values}, key=lambda e: (str(type(json.loads(e))), e))
    plain = [json.loads(e) for e in encoded]
    if _numeric(plain):
        if min(plain) > 0 and max(plain) / min(plain) >= 8:
            ax.set_xscale("log", base=2)
            label += " (log scale)"
        ax.set_xticks(sorted(plain), [f"{v:g}" for v in sorted(plain)])
        ax.minorticks_off()
        ax.set_xlabel(label)
        return {e: float(v) for e, v in zip(encoded, plain, strict=True)}
    ax.set_xticks(range(len(encoded)), [str(v) for v in plain])
    ax.set_xlim(-0.5, len(encoded) - 0.5)
    ax.set_xlabel(label)
    return {e: float(i) for i, e in enumerate(encoded)}


def ablation(
    records: list[dict], param: str | Mapping[str, str], metric: str, path: Path
) -> Path | None:
    """``metric`` against a swept parameter of one table, one line per adapter (and per
    setting of any other parameter that also varies).

    ``param`` names the parameter, or maps each adapter to its own name for the same
    quantity (``{"implicit.ALS": "factors", "surprise.SVD": "n_factors"}``) so libraries
    are compared on one axis.
    """
    param_of = (lambda _: param) if isinstance(param, str) else param.get
    lines: dict[tuple, dict[str, tuple[float, float]]] = defaultdict(dict)
    recs = _ok_test(records)
    for key, rs in _rows(recs).items():
        name = param_of(key[0])
        params = lb.key_params(key)
        if name is None or name not in params:
            continue
        mean, half = lb.aggregate(rs, metric)
        if math.isnan(mean):
            continue
        rest = json.dumps({p: v for p, v in params.items() if p != name}, sort_keys=True)
        lines[(key[0], key[1], rest, *key[3:])][json.dumps(params[name])] = (mean, half)
    lines = {k: v for k, v in lines.items() if len(v) >= 2}
    if not lines:
        return None
    names = row_names(list(lines))
    swept = {k: param_of(k[0]) for k in lines}
    label = " / ".join(sorted(set(swept.values())))
    if len(set(swept.values())) > 1:  # say which parameter each library calls it
        names = {k: f"{n} ({swept[k]})" for k, n in names.items()}
    fig = _figure(8.5, 5.0)
    ax = fig.add_subplot()
    xpos = _sweep_axis(ax, [json.loads(x) for pts in lines.values() for x in pts], label)
    for key in sorted(lines):
        pts = sorted(lines[key].items(), key=lambda kv: xpos[kv[0]])
        x = np.array([xpos[e] for e, _ in pts])
        m = np.array([v[0] for _, v in pts])
        h = np.array([v[1] for _, v in pts])
        ax.errorbar(x, m, yerr=np.where(np.isnan(h), 0, h), marker="o", ms=4, capsize=2.5,
                    label=names[key])
    ax.set_ylabel(f"{metric_label(metric)} ({_direction(metric)})")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{metric_label(metric)} vs {label}\n{table_title(recs[0])}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def sweeps(records: list[dict], min_values: int = 2) -> list[dict[str, str]]:
    """Parameter sweeps in one table: for each adapter whose untuned rows differ in exactly
    one parameter (a suite ``grid``), that parameter; adapters swept over the same values
    share a figure.  Returns one ``{adapter: parameter}`` mapping per figure."""
    values: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in _ok_test(records):
        if r.get("label", "defaults") != "defaults":
            continue
        for p, v in (r.get("params") or {}).items():
            values[r["adapter"]][p].add(json.dumps(v))
    by_values: dict[tuple, dict[str, str]] = defaultdict(dict)
    for adapter, params in values.items():
        varying = [(p, vs) for p, vs in params.items() if len(vs) > 1]
        if len(varying) == 1 and len(varying[0][1]) >= min_values:
            p, vs = varying[0]
            by_values[tuple(sorted(vs))][adapter] = p
    return [by_values[k] for k in sorted(by_values)]


def convergence(records: list[dict], path: Path) -> Path | None:
    """Metric per iteration from ``record["curve"]``: test solid, validation dashed."""
    recs = [r for r in _ok_test(records) if isinstance(r.get("curve"), dict)]
    if not recs:
        return None
    rows = _rows(recs)
    names = row_names(list(rows))
    fig = _figure(8.5, 5.0)
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
    ax.set_ylabel(f"{metric_label(metric)} ({_direction(metric)})" if metric != "metric"
                  else "metric")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Convergence (one line per fold)\n{table_title(recs[0])}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


#: Split fields swept across tables: default when absent, axis label, file-name suffix.
SPLIT_SWEEPS = {
    "n_reveal": (0, "ratings revealed per held-out user", "cold-start"),
    "train_fraction": (1.0, "share of the train rows used (test rows fixed)", "learning-curve"),
}


def _split_value(rec: dict, field: str) -> float:
    return (rec.get("split") or {}).get(field, SPLIT_SWEEPS[field][0])


def split_sweep_groups(records: list[dict], field: str) -> dict[tuple, list[dict]]:
    """Records of tables that differ only in the split's ``field`` (``n_reveal`` of cold
    users, ``train_fraction`` of a learning curve), grouped; groups of 2+ values only."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in _ok_test(records):
        split = r.get("split") or {}
        if field == "n_reveal" and split.get("method") != "cold_users":
            continue
        rest = {k: v for k, v in split.items() if k != field}
        key = (
            r.get("group") or r.get("suite", ""),
            r["dataset"],
            json.dumps(rest, sort_keys=True),
            json.dumps(r.get("metric_options", {}), sort_keys=True),
        )
        groups[key].append(r)
    return {k: v for k, v in groups.items() if len({_split_value(r, field) for r in v}) >= 2}


def split_sweep(records: list[dict], field: str, metric: str, path: Path) -> Path | None:
    """``metric`` against a swept split field (one group of ``split_sweep_groups``), one
    line per row; cold-user lines name their path (fold-in or refit)."""
    recs = _ok_test(records)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in recs:
        cells[(lb.row_key(r), _split_value(r, field))].append(r)
    lines: dict[tuple, dict[float, tuple[float, float]]] = defaultdict(dict)
    paths: dict[tuple, set] = defaultdict(set)
    for (key, x), rs in cells.items():
        mean, half = lb.aggregate(rs, metric)
        if not math.isnan(mean):
            lines[key][x] = (mean, half)
            paths[key].update(r["cold_path"] for r in rs if r.get("cold_path"))
    if not lines:
        return None
    names = row_names(list(lines))
    fig = _figure(8.5, 5.0)
    ax = fig.add_subplot()
    xs_all = sorted({x for v in lines.values() for x in v})
    ordered = sorted(lines, key=lambda k: -max(v[0] for v in lines[k].values()))
    # Dodge lines sideways a little so their interval bars do not hide each other.
    dodge = 0.012 * (max(xs_all) - min(xs_all) or 1)
    for j, key in enumerate(ordered):
        xs = sorted(lines[key])
        m = np.array([lines[key][x][0] for x in xs])
        h = np.array([lines[key][x][1] for x in xs])
        how = "/".join(sorted(paths[key] - {""}))
        name = names[key] if not how or how in names[key] else f"{names[key]} ({how})"
        x = np.array(xs, np.float64) + (j - (len(ordered) - 1) / 2) * dodge
        ax.errorbar(x, m, yerr=np.where(np.isnan(h), 0, h), marker="o", ms=4, capsize=2.5,
                    label=name)
    percent = field == "train_fraction"
    ax.set_xticks(xs_all, [f"{x:.0%}" if percent else f"{x:g}" for x in xs_all])
    ax.set_xlabel(SPLIT_SWEEPS[field][1])
    ax.grid(True, alpha=0.3)
    first = recs[0]
    options = lb.relevance_text(first.get("metric_options", {}))
    split = first["split"]
    if field == "n_reveal":
        ax.set_ylabel(f"{metric_label(metric)} of held-out users ({_direction(metric)})")
        title = (
            f"Cold-start users: {metric_label(metric)} vs revealed ratings\n{first['dataset']}"
            f" · {round(split.get('cold_fraction', 0) * 100)}% of users held out "
            f"(seed {split.get('seed')}) · {options}"
        )
        legend_title = "model (fold-in = fitted without them;\nrefit = refitted with them)"
    else:
        ax.set_ylabel(f"{metric_label(metric)} ({_direction(metric)})")
        label = re.sub(r",\s*\d+% of train", "", first.get("split_label", ""))
        title = (
            f"Learning curve: {metric_label(metric)} vs train size\n{first['dataset']} · "
            f"{label} (seed {split.get('seed')}) · {options}"
        )
        legend_title = None
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title=legend_title, title_fontsize=7)
    return _save(fig, path)


def cold_start(records: list[dict], metric: str, path: Path) -> Path | None:
    """``metric`` of held-out users against the number of ratings they reveal."""
    return split_sweep(records, "n_reveal", metric, path)


def cold_start_groups(records: list[dict]) -> dict[tuple, list[dict]]:
    """Cold-user records grouped by everything but ``n_reveal``."""
    return split_sweep_groups(records, "n_reveal")


def thread_scaling(records: list[dict], path: Path) -> Path | None:
    """Fit time and speed-up against the thread count, for rows run with several counts
    (row keys that differ only in ``threads``)."""
    recs = _ok_test(records)
    lines: dict[tuple, dict[int, float]] = defaultdict(dict)
    for key, rs in _rows(recs).items():
        if len(key) < 4 or key[3] is None:
            continue
        fit, _ = lb.aggregate(rs, "fit_seconds", timing=True)
        if not math.isnan(fit) and fit > 0:
            lines[(*key[:3], *key[4:])][int(key[3])] = fit
    lines = {k: v for k, v in lines.items() if len(v) >= 2}
    if not lines:
        return None
    names = row_names(list(lines))
    threads = sorted({t for v in lines.values() for t in v})
    fig = _figure(11.0, 4.8)
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
    _plain_log_ticks(ax_time.yaxis, np.array([f for v in lines.values() for f in v.values()]))
    ax_time.set_ylabel("fit time per fold (s, log scale)")
    ax_speed.set_ylabel(f"speed-up over {threads[0]} thread{'s' if threads[0] > 1 else ''}")
    ax_speed.legend(fontsize=8, loc="upper left", frameon=False)
    fig.suptitle(f"Thread scaling\n{table_title(recs[0])}", fontsize=10)
    ax_time.legend(fontsize=8, loc="upper left", bbox_to_anchor=(2.25, 1.0), frameon=False)
    return _save(fig, path)


def metric_definition_groups(records: list[dict], name: str = "ndcg") -> dict[tuple, list]:
    """Records of one (group, dataset, split) scored under 2+ metric definitions
    (relevance thresholds x cut-offs K); see ``metric_definition``."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in _ok_test(records):
        # Candidate sets and curves are protocols, not metric definitions: kept apart.
        opts = r.get("metric_options", {})
        key = (r.get("group") or r.get("suite", ""), r["dataset"],
               json.dumps(r.get("split"), sort_keys=True),
               opts.get("candidates", "all"), opts.get("curve"))
        groups[key].append(r)
    return {k: v for k, v in groups.items() if len(_definitions(v, name)) >= 2}


def _definitions(records: list[dict], name: str) -> list[tuple[str, str]]:
    """(metric options JSON, metric) pairs present, e.g. (threshold 4, ``ndcg@10``)."""
    found = {
        (json.dumps(r.get("metric_options", {}), sort_keys=True), m)
        for r in records
        for m in (r.get("metrics") or {})
        if m.startswith(f"{name}@")
    }

    def order(d: tuple[str, str]) -> tuple:
        thr = json.loads(d[0]).get("threshold")
        return (-math.inf if thr is None else thr, int(d[1].split("@")[1]))

    return sorted(found, key=order)


def metric_definition(records: list[dict], path: Path, name: str = "ndcg") -> Path | None:
    """Rank of each model (1 = best) under each metric definition: does the order of
    models depend on the relevance threshold and the cut-off K?"""
    recs = _ok_test(records)
    defs = _definitions(recs, name)
    if len(defs) < 2:
        return None
    means: dict[tuple, np.ndarray] = {}
    for key, rs in _rows(recs).items():
        row = np.full(len(defs), np.nan)
        for j, (opts, metric) in enumerate(defs):
            sel = [r for r in rs if json.dumps(r.get("metric_options", {}), sort_keys=True) == opts]
            row[j] = lb.aggregate(sel, metric)[0] if sel else np.nan
        if not np.isnan(row).all():
            means[key] = row
    if len(means) < 2:
        return None
    keys = sorted(means)
    values = np.array([means[k] for k in keys])
    # Rank per definition, best first (ties share the better rank); missing ranks last.
    filled = np.where(np.isnan(values), -np.inf, values)
    ranks = (filled[None, :, :] > filled[:, None, :]).sum(axis=1) + 1
    names = row_names(keys)
    fig = _figure(max(7.0, 1.1 * len(defs) + 4), 0.32 * len(keys) + 2.5)
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(keys) <= 10 else "tab20"]
    x = np.arange(len(defs))
    final = ranks[:, -1]
    for i in np.argsort(final, kind="stable"):
        ax.plot(x, ranks[i], marker="o", ms=4, color=cmap(i % cmap.N), label=names[keys[i]])
    ax.set_yticks(range(1, len(keys) + 1))
    ax.set_ylim(len(keys) + 0.5, 0.5)
    labels = []
    for opts, metric in defs:
        thr = json.loads(opts).get("threshold")
        rel = "all relevant" if thr is None else f"rating ≥ {thr:g}"
        labels.append(f"{metric_label(metric)}\n{rel}")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel("metric definition (cut-off K, relevance rule)")
    ax.set_ylabel("rank of the model (1 = best)")
    ax.grid(True, axis="y", alpha=0.3)
    first = recs[0]
    ax.set_title(
        f"Model ranks by metric definition ({name.upper()})\n{first['dataset']} · "
        f"{first.get('split_label', '')} (seed {first['split'].get('seed')})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="ordered by the last column", title_fontsize=7)
    return _save(fig, path)


def activity_bands(
    records: list[dict], metric: str, path: Path, top: int = TOP_LINES
) -> Path | None:
    """``metric`` by band of users' train-set size for the ``top`` best rows of a table."""
    recs = [r for r in _ok_test(records) if metric in (r.get("bands") or {})]
    if not recs:
        return None
    rows = _rows(recs)
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
    overall = {k: lb.aggregate(rows[k], metric)[0] for k in series}
    sign = -1 if _higher_better(metric) else 1
    keys = sorted(series, key=lambda k: (sign * np.nan_to_num(overall[k], nan=-sign * np.inf),
                                         k))[:top]
    names = row_names(keys)
    fig = _figure(9.0, 5.0)
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
    ax.set_ylabel(f"{metric_label(metric)} ({_direction(metric)})")
    ax.grid(True, alpha=0.3)
    shown = f"best {len(keys)} of {len(series)} models" if len(series) > len(keys) else \
        f"{len(keys)} models"
    ax.set_title(f"{metric_label(metric)} by user activity ({shown})\n{table_title(recs[0])}",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


# ---------------------------------------------------------------------------- all


def render_all(
    records: list[dict], results_dir: ResultsDir, out_dir: Path | None = None
) -> list[Path]:
    """Every figure the stored records support; returns the PNG paths written.

    ``results_dir`` locates per-user files (significance hatching in bar charts); it may
    be one directory or several.  ``out_dir`` defaults to ``<first results dir>/plots``.
    Tables that are points of a split sweep (cold-start n, learning-curve train share)
    get the sweep's curve instead of per-table figures.
    """
    dirs = [Path(results_dir)] if isinstance(results_dir, str | Path) else [
        Path(d) for d in results_dir]
    out = Path(out_dir) if out_dir is not None else dirs[0] / "plots"
    written: list[Path | None] = []
    swept_tables = set()
    for field, (_, _, suffix) in SPLIT_SWEEPS.items():
        for recs in split_sweep_groups(records, field).values():
            swept_tables.update(lb.table_key(r) for r in recs)
            metric = first_ranking_metric(recs) or _rating_metric(recs)
            if metric:
                label = re.sub(r",\s*(n=\d+|\d+% of train)", "", recs[0].get("split_label", ""))
                slug = table_slug({**recs[0], "split_label": label})
                written.append(split_sweep(recs, field, metric, out / f"{slug}_{suffix}.png"))
    for recs in metric_definition_groups(records).values():
        slug = table_slug(recs[0], relevance=False)
        written.append(metric_definition(recs, out / f"{slug}_ranks-by-metric-definition.png"))
    for key, recs in sorted(_tables(records).items()):
        if key in swept_tables:  # one curve covers these; per-point tables would repeat it
            continue
        slug = table_slug(recs[0])
        ndcg = first_ranking_metric(recs)
        rating = _rating_metric(recs)
        if rating:
            written.append(quality_vs_time(recs, rating, out / f"{slug}_{rating}-vs-fit.png"))
        if ndcg:
            name = ndcg.replace("@", "")
            written.append(quality_vs_time(recs, ndcg, out / f"{slug}_{name}-vs-fit.png"))
            written.append(metric_bars(recs, ndcg, out / f"{slug}_{name}-bars.png", dirs))
            written.append(activity_bands(recs, ndcg, out / f"{slug}_{name}-by-activity.png"))
        main_metric = ndcg or rating
        if main_metric:
            name = main_metric.replace("@", "")
            for mapping in sweeps(recs):
                params = "-".join(sorted(set(mapping.values())))
                written.append(ablation(recs, mapping, main_metric,
                                        out / f"{slug}_{name}-vs-{params}.png"))
        written.append(thread_scaling(recs, out / f"{slug}_threads.png"))
        written.append(convergence(recs, out / f"{slug}_convergence.png"))
    return [p for p in written if p is not None]


def _rating_metric(records: list[dict]) -> str | None:
    has_rmse = any((r.get("metrics") or {}).get("rmse") is not None for r in records)
    return "rmse" if has_rmse else None


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.plots RESULTS... [--out DIR]``: figures from stored results."""
    import argparse
    import sys

    from bench import store

    parser = argparse.ArgumentParser(prog="python -m bench.plots", description=main.__doc__)
    parser.add_argument("results", type=Path, nargs="+", help="results dirs or .jsonl files")
    parser.add_argument("--out", type=Path, help="default: <first results dir>/plots")
    args = parser.parse_args(argv)
    files = store.files(args.results)
    if not files:
        print(f"error: no results found in {', '.join(map(str, args.results))}", file=sys.stderr)
        return 2
    from bench import significance

    dirs = significance.results_dirs(files)
    for path in render_all(store.load(files), dirs, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
