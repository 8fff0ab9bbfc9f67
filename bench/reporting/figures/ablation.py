"""A metric against a swept parameter of one table (a suite ``grid``), one line per adapter."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import RowKey, aggregate, by_row
from bench.reporting.text import direction, metric_label


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
    lines: dict[RowKey, dict[str, tuple[float, float]]] = defaultdict(dict)
    recs = common.ok_test(records)
    for key, rs in by_row(recs).items():
        name = param_of(key.adapter)
        params = key.param_dict
        if name is None or name not in params:
            continue
        mean, half = aggregate(rs, metric)
        if math.isnan(mean):
            continue
        rest = json.dumps({p: v for p, v in params.items() if p != name}, sort_keys=True)
        lines[key._replace(params=rest)][json.dumps(params[name])] = (mean, half)
    lines = {k: v for k, v in lines.items() if len(v) >= 2}
    if not lines:
        return None
    names = common.row_names(list(lines))
    swept = {k: param_of(k.adapter) for k in lines}
    label = " / ".join(sorted(set(swept.values())))
    if len(set(swept.values())) > 1:  # say which parameter each library calls it
        names = {k: f"{n} ({swept[k]})" for k, n in names.items()}
    fig = common.new_figure(8.5, 5.0)
    ax = fig.add_subplot()
    xpos = _sweep_axis(ax, [json.loads(x) for pts in lines.values() for x in pts], label)
    for key in sorted(lines):
        pts = sorted(lines[key].items(), key=lambda kv: xpos[kv[0]])
        x = np.array([xpos[e] for e, _ in pts])
        m = np.array([v[0] for _, v in pts])
        h = np.array([v[1] for _, v in pts])
        ax.errorbar(x, m, yerr=np.where(np.isnan(h), 0, h), marker="o", ms=4, capsize=2.5,
                    label=names[key])
    ax.set_ylabel(f"{metric_label(metric)} ({direction(metric)})")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{metric_label(metric)} vs {label}\n{common.table_title(recs[0])}", fontsize=10)
    common.outside_legend(ax)
    return common.save(fig, path)


def sweeps(records: list[dict], min_values: int = 2) -> list[dict[str, str]]:
    """Parameter sweeps in one table: for each adapter whose untuned rows differ in exactly
    one parameter (a suite ``grid``), that parameter; adapters swept over the same values
    share a figure.  Returns one ``{adapter: parameter}`` mapping per figure."""
    values: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in common.ok_test(records):
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
