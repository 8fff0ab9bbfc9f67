"""The leaderboard's tables as data: one row per leaderboard row, written as CSV or LaTeX
(``python -m bench report --format csv|latex``, ``bench.results.table``).

A row pools a model's records over folds and seeds exactly as the markdown leaderboard
does (``record.aggregate``: mean and 95% half-width), in the same table and row order
(tables by dataset and split, rows by the table's sort column).  Two keys identify rows
across every table, for grouping and for choosing rows (``bench.results``):

* ``table_key``: a digest of ``record.table_key`` (suite group, dataset, split, metric
  options);
* ``row_key``: a digest of the table key, ``record.row_key`` (adapter, label, parameters,
  threads, cold path) and the stage, so two leaderboard rows never share one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping

import pandas as pd

from bench.evaluation.metrics import lower_is_better
from bench.execution.record import aggregate, by_row, by_table, row_key, table_key
from bench.reporting import leaderboard
from bench.reporting.leaderboard.table import TIME_COLUMNS
from bench.reporting.text import header_name, relevance_text

#: the columns before the metrics in ``frame``
FRONT = ("table_key", "row_key", "group", "dataset", "split_label", "relevance", "adapter",
         "model", "label", "params", "threads", "cold_path", "seeds", "folds", "rank",
         "sort_column")
#: suffix of a metric's 95% half-width column (``ndcg@10.ci95``)
CI = ".ci95"


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def table_id(rec: Mapping) -> str:
    """The ``table_key`` of a record: which leaderboard table it belongs to."""
    return _digest(list(table_key(rec)))


def row_id(rec: Mapping) -> str:
    """The ``row_key`` of a record: which leaderboard row (of which table) it belongs to."""
    return _digest([list(table_key(rec)), list(row_key(rec)), rec.get("stage", "test")])


def frame(records: list[dict]) -> pd.DataFrame:
    """Every leaderboard row of ``records`` (finished test trials) with its cells."""
    out: list[dict] = []
    tables = by_table(records)
    for key in sorted(tables, key=leaderboard.table_order):
        ok = tables[key]
        rows = by_row(ok)
        cols = leaderboard.columns_for(ok)
        sort_col = leaderboard.sort_column(ok)
        labels = leaderboard.labels_for(rows)
        first = ok[0]
        cells = {}
        for rk, recs in rows.items():
            cells[rk] = {c: aggregate(recs, c) for c in cols}
            cells[rk].update({t: aggregate(recs, t, timing=True) for t in TIME_COLUMNS})

        def order(rk, cells=cells, sort_col=sort_col) -> tuple:
            value = cells[rk][sort_col][0] if sort_col else math.nan
            sign = 1 if sort_col and lower_is_better(sort_col) else -1
            return (math.inf if math.isnan(value) else sign * value, rk)

        for rank, rk in enumerate(sorted(rows, key=order), start=1):
            recs = rows[rk]
            row = {
                "table_key": table_id(first), "row_key": row_id(recs[0]),
                "group": key.group, "dataset": key.dataset,
                "split_label": first.get("split_label", ""),
                "relevance": relevance_text(first.get("metric_options", {})),
                "adapter": rk.adapter, "model": labels[rk], "label": rk.label,
                "params": rk.params, "threads": rk.threads, "cold_path": rk.cold_path,
                "seeds": len({r.get("seed") for r in recs}),
                "folds": len({r["fold"] for r in recs}), "rank": rank, "sort_column": sort_col,
            }
            for c, (mean, half) in cells[rk].items():
                row[c] = None if math.isnan(mean) else mean
                if c not in TIME_COLUMNS:
                    row[c + CI] = None if math.isnan(half) else half
            out.append(row)
    result = pd.DataFrame(out)
    if result.empty:
        return pd.DataFrame(columns=list(FRONT))
    return result[[*FRONT, *(c for c in result.columns if c not in FRONT)]]


def to_csv(table: pd.DataFrame) -> str:
    """``frame`` as CSV text (one header line, one line per leaderboard row)."""
    return table.to_csv(index=False, lineterminator="\n")


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}"}


def latex_escape(text: object) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def _metrics_of(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in FRONT and not c.endswith(CI)
            and c not in TIME_COLUMNS and table[c].notna().any()]


def to_latex(table: pd.DataFrame) -> str:
    """``frame`` as LaTeX: one ``table`` (booktabs ``tabular``) per leaderboard table, cells
    ``mean $\\pm$ half-width``, the best of each column in bold.  Needs
    ``\\usepackage{booktabs}``."""
    parts = ["% recbench leaderboard tables; needs \\usepackage{booktabs}"]
    for _, part in table.groupby("table_key", sort=False):
        metrics = _metrics_of(part)
        times = [t for t in TIME_COLUMNS if t in part and part[t].notna().any()]
        first = part.iloc[0]
        head = ["Model", "Parameters", *map(header_name, metrics),
                *(TIME_COLUMNS[t] for t in times), "Folds"]
        best = {}
        for c in [*metrics, *times]:
            values = part[c].dropna()
            if len(values):
                best[c] = values.min() if lower_is_better(c) else values.max()
        caption = (f"{first['group']}: {first['dataset']}, {first['split_label']}, "
                   f"{first['relevance']}")
        lines = [
            r"\begin{table}[ht]", r"\centering",
            rf"\caption{{{latex_escape(caption)}}}",
            r"\begin{tabular}{ll" + "r" * (len(head) - 2) + "}", r"\toprule",
            " & ".join(latex_escape(h) for h in head) + r" \\", r"\midrule",
        ]
        for _, row in part.iterrows():
            cells = [latex_escape(row["adapter"]), latex_escape(row["model"])]
            for c in [*metrics, *times]:
                value = row[c]
                if value is None or pd.isna(value):
                    cells.append("")
                    continue
                text = f"{value:.2f}" if c in times else f"{value:.4f}"
                if c in best and value == best[c]:
                    text = rf"\textbf{{{text}}}"
                half = row.get(c + CI)
                if c not in times and half is not None and not pd.isna(half):
                    text += rf" $\pm$ {half:.4f}"
                cells.append(text)
            cells.append(str(row["folds"]))
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
