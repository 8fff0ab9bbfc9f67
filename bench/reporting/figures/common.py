"""What every figure shares: the records it draws (rows of a table, as the leaderboard's),
row names, library colours, titles and file-name slugs, the canvas, the legend and saving.

Matplotlib is used through ``Figure`` + the Agg canvas directly (no pyplot, no global
backend switch), so importing the package changes nothing for a caller's own plotting.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.evaluation.metrics import lower_is_better
from bench.execution.record import RowKey, aggregate, group_of, is_ok_test
from bench.reporting.text import relevance_text

DPI = 120
#: Pareto-front and label drawing assume at most a few dozen rows per table.
TOP_LINES = 8

ResultsDir = Path | str | Sequence[Path | str]


# ---------------------------------------------------------------------------- records


def ok_test(records: list[dict]) -> list[dict]:
    """The records figures are drawn from (``record.is_ok_test``)."""
    return [r for r in records if is_ok_test(r)]


def higher_better(metric: str) -> bool:
    return not lower_is_better(metric)


def first_ranking_metric(records: list[dict], name: str = "ndcg") -> str | None:
    """``<name>@K`` for the smallest K present in the records (e.g. ``ndcg@10``)."""
    ks = sorted(
        {int(k.split("@")[1]) for r in records for k in (r.get("metrics") or {})
         if k.startswith(f"{name}@")}
    )
    return f"{name}@{ks[0]}" if ks else None


def rating_metric(records: list[dict]) -> str | None:
    has_rmse = any((r.get("metrics") or {}).get("rmse") is not None for r in records)
    return "rmse" if has_rmse else None


#: How the row-key fields after adapter, label and parameters read in a name.
_KEY_FIELDS = {"threads": "threads={}", "cold_path": "{}"}


def row_names(keys: list[RowKey], short: bool = False) -> dict[RowKey, str]:
    """Readable, unique names: the adapter (or only its model part when ``short``), plus
    the parameters that differ between rows of the same adapter, plus a non-default label."""
    by_adapter: dict[str, list[RowKey]] = defaultdict(list)
    for k in keys:
        by_adapter[k.adapter].append(k)
    # A model part shared by two libraries (scipy.SVD, surprise.SVD) keeps its library.
    model_libs: dict[str, set] = defaultdict(set)
    for adapter in by_adapter:
        model_libs[adapter.split(".", 1)[-1]].add(library(adapter))
    names = {}
    for adapter, ks in by_adapter.items():
        params = [k.param_dict for k in ks]
        varying = sorted(
            {p for ps in params for p in ps if len({json.dumps(q.get(p)) for q in params}) > 1}
        )
        model = adapter.split(".", 1)[-1]
        base = model if short and len(model_libs[model]) == 1 else adapter
        # Threads and cold path are named where they differ between an adapter's rows.
        extra_varying = [f for f in _KEY_FIELDS if len({getattr(k, f) for k in ks}) > 1]
        for k, ps in zip(ks, params, strict=True):
            extra = [f"{p}={ps.get(p)}" for p in varying]
            extra += [
                _KEY_FIELDS[f].format(getattr(k, f))
                for f in extra_varying
                if getattr(k, f) not in (None, "")
            ]
            if k.label != "defaults":
                extra.insert(0, k.label)
            names[k] = f"{base} ({', '.join(extra)})" if extra else base
    return names


def library(adapter: str) -> str:
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


def library_colours(adapters: list[str]) -> dict[str, str]:
    libs = sorted({library(a) for a in adapters})
    spare = iter(_SPARE_COLOURS * len(libs))
    return {lib: LIBRARY_COLOURS.get(lib) or next(spare) for lib in libs}


def row_stats(
    rows: Mapping[RowKey, list[dict]], metric: str
) -> dict[RowKey, tuple[float, float, float]]:
    """Per row: (mean metric, 95% half-width, mean fit seconds); rows without the metric
    are left out."""
    out = {}
    for key, recs in rows.items():
        mean, half = aggregate(recs, metric)
        if math.isnan(mean):
            continue
        fit, _ = aggregate(recs, "fit_seconds", timing=True)
        out[key] = (mean, half, fit)
    return out


def table_title(rec: dict) -> str:
    seed = rec.get("split", {}).get("seed")
    return (
        f"{rec['dataset']} · {rec.get('split_label', '')} (seed {seed}) · "
        f"{relevance_text(rec.get('metric_options', {}))}"
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
    group = group_of(rec)
    text = f"{group}_{rec['dataset']}_{rec.get('split_label', '')}_seed{rec['split'].get('seed')}"
    text += f"_{rel}" if relevance else ""
    return re.sub(r"[^A-Za-z0-9.=-]+", "-", text).strip("-")



# ---------------------------------------------------------------------------- drawing


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Written whole or not at all (a full disk leaves no empty PNG): ``StoreFault``."""
    from bench.execution import store

    store.write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI,
                                                    bbox_inches="tight"))
    return path

def outside_legend(ax: Any, anchor: tuple[float, float] | None = (1.01, 1.0), **options: Any):
    """The figures' legend: upper left corner at ``anchor`` (axes fraction; right of the
    plot by default, None = inside the axes), 8 pt, no frame; ``options`` go to
    ``ax.legend`` (``title``, ``title_fontsize``, ``handles``)."""
    if anchor is not None:
        options["bbox_to_anchor"] = anchor
    return ax.legend(loc="upper left", fontsize=8, frameon=False, **options)
