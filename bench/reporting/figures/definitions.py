"""Rank of each model under every metric definition (relevance threshold x cut-off K) of
one dataset and split: does the order of models depend on the definition?"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import RowKey, aggregate, by_row, group_of
from bench.reporting.text import metric_label


def metric_definition_groups(records: list[dict], name: str = "ndcg") -> dict[tuple, list]:
    """Records of one (group, dataset, split) scored under 2+ metric definitions
    (relevance thresholds x cut-offs K); see ``metric_definition``."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in common.ok_test(records):
        # Candidate sets and curves are protocols, not metric definitions: kept apart.
        opts = r.get("metric_options", {})
        key = (group_of(r), r["dataset"], json.dumps(r.get("split"), sort_keys=True),
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
    recs = common.ok_test(records)
    defs = _definitions(recs, name)
    if len(defs) < 2:
        return None
    means: dict[RowKey, np.ndarray] = {}
    for key, rs in by_row(recs).items():
        row = np.full(len(defs), np.nan)
        for j, (opts, metric) in enumerate(defs):
            sel = [r for r in rs if json.dumps(r.get("metric_options", {}), sort_keys=True) == opts]
            row[j] = aggregate(sel, metric)[0] if sel else np.nan
        if not np.isnan(row).all():
            means[key] = row
    if len(means) < 2:
        return None
    keys = sorted(means)
    values = np.array([means[k] for k in keys])
    # Rank per definition, best first (ties share the better rank); missing ranks last.
    filled = np.where(np.isnan(values), -np.inf, values)
    ranks = (filled[None, :, :] > filled[:, None, :]).sum(axis=1) + 1
    names = common.row_names(keys)
    fig = common.new_figure(max(7.0, 1.1 * len(defs) + 4), 0.32 * len(keys) + 2.5)
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
    common.outside_legend(ax, title="ordered by the last column", title_fontsize=7)
    return common.save(fig, path)
