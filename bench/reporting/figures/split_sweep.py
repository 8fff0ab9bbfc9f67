"""A metric against a split field swept across otherwise equal tables: revealed ratings of
cold users (``n_reveal``) or the share of train rows used (learning curve)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

import bench.reporting.figures.common as common
from bench.execution.record import RowKey, TableKey, aggregate, row_key, table_key
from bench.reporting.text import direction, metric_label, relevance_text

#: Split fields swept across tables: default when absent, axis label, file-name suffix.
SPLIT_SWEEPS = {
    "n_reveal": (0, "ratings revealed per held-out user", "cold-start"),
    "train_fraction": (1.0, "share of the train rows used (test rows fixed)", "learning-curve"),
}


def _split_value(rec: dict, field: str) -> float:
    return (rec.get("split") or {}).get(field, SPLIT_SWEEPS[field][0])


def split_sweep_groups(records: list[dict], field: str) -> dict[TableKey, list[dict]]:
    """Records of tables that differ only in the split's ``field`` (``n_reveal`` of cold
    users, ``train_fraction`` of a learning curve), grouped; groups of 2+ values only."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in common.ok_test(records):
        split = r.get("split") or {}
        if field == "n_reveal" and split.get("method") != "cold_users":
            continue
        rest = {k: v for k, v in split.items() if k != field}
        key = table_key({**r, "split": rest})
        groups[key].append(r)
    return {k: v for k, v in groups.items() if len({_split_value(r, field) for r in v}) >= 2}


def split_sweep(records: list[dict], field: str, metric: str, path: Path) -> Path | None:
    """``metric`` against a swept split field (one group of ``split_sweep_groups``), one
    line per row; cold-user lines name their path (fold-in or refit)."""
    recs = common.ok_test(records)
    cells: dict[tuple[RowKey, float], list[dict]] = defaultdict(list)
    for r in recs:
        cells[(row_key(r), _split_value(r, field))].append(r)
    lines: dict[RowKey, dict[float, tuple[float, float]]] = defaultdict(dict)
    paths: dict[RowKey, set] = defaultdict(set)
    for (key, x), rs in cells.items():
        mean, half = aggregate(rs, metric)
        if not math.isnan(mean):
            lines[key][x] = (mean, half)
            paths[key].update(r["cold_path"] for r in rs if r.get("cold_path"))
    if not lines:
        return None
    names = common.row_names(list(lines))
    fig = common.new_figure(8.5, 5.0)
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
    options = relevance_text(first.get("metric_options", {}))
    split = first["split"]
    if field == "n_reveal":
        ax.set_ylabel(f"{metric_label(metric)} of held-out users ({direction(metric)})")
        title = (
            f"Cold-start users: {metric_label(metric)} vs revealed ratings\n{first['dataset']}"
            f" · {round(split.get('cold_fraction', 0) * 100)}% of users held out "
            f"(seed {split.get('seed')}) · {options}"
        )
        legend_title = "model (fold-in = fitted without them;\nrefit = refitted with them)"
    else:
        ax.set_ylabel(f"{metric_label(metric)} ({direction(metric)})")
        label = re.sub(r",\s*\d+% of train", "", first.get("split_label", ""))
        title = (
            f"Learning curve: {metric_label(metric)} vs train size\n{first['dataset']} · "
            f"{label} (seed {split.get('seed')}) · {options}"
        )
        legend_title = None
    ax.set_title(title, fontsize=10)
    common.outside_legend(ax, title=legend_title, title_fontsize=7)
    return common.save(fig, path)
