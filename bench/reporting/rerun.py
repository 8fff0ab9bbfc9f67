"""Rows that moved beyond their interval when the same trials were re-run elsewhere.

A results dir may hold re-runs of some of its trials under ``reruns/<name>/runs/*.jsonl``
(``python -m bench run --suite S --results DIR/reruns/NAME`` on another CPU, or on this one
with another CPU's code paths, see docs/reproducibility.md).  The machine is never part of
the match.

Records are matched by what defines a trial (``record.match_key``: dataset, split, fold,
adapter, parameters, seed, metric options, label) and their thread count, so the 1- and
2-thread rows of a thread sweep each meet their own re-run.

A leaderboard row is marked ``RERUN_MARK`` on its sort column when the mean of its re-run
records lies outside the row's 95% interval (``record.aggregate``; a row without an
interval is marked when the mean changed at all).  A row is judged only when every one of
its records was re-run.  ``section`` lists every judged row that moved, old and new value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.execution import store
from bench.execution.record import RowKey, aggregate, by_row, is_ok_test, match_key, table_key

RERUN_MARK = " ⇄"


@dataclass(frozen=True)
class Rerun:
    """The records of one re-run, by match key (finished test-stage trials only)."""

    name: str
    records: Mapping[str, dict]

    @property
    def where(self) -> str:
        """The CPU(s) and the code-path settings the re-run recorded (``envinfo``'s
        ``CODE_PATH_ENV_VARS``; thread counts left out)."""
        cpus = sorted({str((r.get("env") or {}).get("cpu", "?")) for r in self.records.values()})
        paths = sorted({
            f"{k}={v}"
            for r in self.records.values()
            for k, v in (((r.get("env") or {}).get("threads") or {}).get("env") or {}).items()
            if not k.endswith("_NUM_THREADS")
        })
        text = ", ".join(cpus)
        return text + (f" with {', '.join(f'`{p}`' for p in paths)}" if paths else "")


@dataclass(frozen=True)
class Move:
    """A row's sort-column mean, published and re-run, and its interval half-width."""

    rerun: str
    metric: str
    before: float
    after: float
    half: float

    @property
    def moved(self) -> bool:
        bound = 0.0 if math.isnan(self.half) else self.half
        return abs(self.after - self.before) > bound + 1e-12


def trial_key(rec: Mapping) -> tuple[str, Any]:
    """What a re-run record is matched on: the trial's definition and its thread count."""
    return match_key(rec), rec.get("threads")


def load(results_dirs: Sequence[Path]) -> list[Rerun]:
    """Every ``reruns/<name>`` store under ``results_dirs``, in name order."""
    out = []
    for d in results_dirs:
        for sub in sorted(p for p in (Path(d) / "reruns").glob("*") if p.is_dir()):
            recs = {trial_key(r): r for r in store.load([sub]) if is_ok_test(r)}
            if recs:
                out.append(Rerun(sub.name, recs))
    return out


def row_move(records: list[dict], rerun: Rerun, metric: str) -> Move | None:
    """How ``rerun`` moved one row (all its records re-run), else None."""
    again = [rerun.records.get(trial_key(r)) for r in records]
    if not records or any(a is None or metric not in (a.get("metrics") or {}) for a in again):
        return None
    before, half = aggregate(records, metric)
    after, _ = aggregate([a for a in again if a is not None], metric)
    if math.isnan(before) or math.isnan(after):
        return None
    return Move(rerun.name, metric, before, after, half)


class RerunMarks:
    """Significance marks (``inner``) plus ``RERUN_MARK`` on rows a re-run moved; the
    leaderboard's ``Marks`` protocol."""

    def __init__(self, inner: Any, reruns: list[Rerun]) -> None:
        self.inner, self.reruns = inner, reruns

    def table(self, records: list[dict], metric: str) -> dict[RowKey, tuple[Any, list[Move]]]:
        marked = self.inner.table(records, metric)
        rows = by_row(records)
        out: dict[RowKey, tuple[Any, list[Move]]] = {}
        for key in set(rows) | set(marked):
            moves = [m for rr in self.reruns
                     if (m := row_move(rows.get(key, []), rr, metric)) is not None]
            out[key] = (marked.get(key), moves)
        return out

    def suffix(self, result: tuple[Any, list[Move]] | None) -> str:
        inner, moves = result if result is not None else (None, [])
        return self.inner.suffix(inner) + (RERUN_MARK if any(m.moved for m in moves) else "")

    def legend(self, column: str) -> str:
        text = self.inner.legend(column)
        if not self.reruns:
            return text
        where = "; ".join(f"`{r.name}`: {r.where}" for r in self.reruns)
        return (f"{text}\n\n{RERUN_MARK.strip()} in {column}: when the row's trials were "
                f"re-run on another CPU or with another CPU's code paths ({where}), the "
                "mean moved outside the row's 95% interval (see the section *Re-runs on "
                "another CPU* at the end). Rows whose trials were not all re-run carry no "
                "mark either way.")


def section(records: list[dict], reruns: list[Rerun], sort_column: Any) -> str:
    """Markdown: per re-run, how many trials repeat exactly, and every row that moved
    beyond its interval on its table's sort column (``sort_column(recs) -> metric``)."""
    if not reruns:
        return ""
    ok = [r for r in records if is_ok_test(r)]
    lines = ["## Re-runs on another CPU", ""]
    for rr in reruns:
        pairs = [(r, rr.records[trial_key(r)]) for r in ok if trial_key(r) in rr.records]
        differ: dict[str, list[float]] = {}
        for r, a in pairs:
            before, after = r.get("metrics") or {}, a.get("metrics") or {}
            if before != after:
                differ.setdefault(r["adapter"], []).append(max(
                    (abs(after[m] - v) for m, v in before.items()
                     if isinstance(v, int | float) and isinstance(after.get(m), int | float)),
                    default=math.nan))
        n_differ = sum(map(len, differ.values()))
        lines += [
            f"`{rr.name}` ({rr.where}): {len(pairs)} of {len(ok)} published trials re-run; "
            f"{len(pairs) - n_differ} gave every metric bit for bit, {n_differ} differ in "
            "some metric" + (":" if differ else "."),
            "",
        ]
        if differ:
            total = {a: sum(r["adapter"] == a for r, _ in pairs) for a in differ}
            lines += [
                "; ".join(f"`{a}` {len(v)} of {total[a]} (largest change in a metric {max(v):.2g})"
                          for a, v in sorted(differ.items())) + ".",
                "",
            ]
        tables: dict[Any, list[dict]] = {}
        for r in ok:
            tables.setdefault(table_key(r), []).append(r)
        moved = []
        judged = 0
        for tkey in sorted(tables, key=lambda k: tuple(map(str, k))):
            recs = tables[tkey]
            metric = sort_column(recs)
            if metric is None:
                continue
            for rkey, rows in sorted(by_row(recs).items(), key=lambda kv: tuple(map(str, kv[0]))):
                move = row_move(rows, rr, metric)
                if move is None:
                    continue
                judged += 1
                if move.moved:
                    moved.append((tkey, rkey, move))
        lines += [f"{judged} rows judged on their table's sort column; {len(moved)} moved "
                  "beyond their 95% interval" + (":" if moved else "."), ""]
        if moved:
            lines += ["| suite | dataset · split | model | label | metric | published | "
                      "re-run | change |", "|---|---|---|---|---|---|---|---|"]
            for tkey, rkey, m in moved:
                split = tables[tkey][0].get("split_label", "")
                half = "" if math.isnan(m.half) else f" ± {m.half:.4f}"
                lines.append(
                    f"| {tkey.group} | {tkey.dataset} · {split} | `{rkey.adapter}` | "
                    f"{rkey.label} | {m.metric} | {m.before:.4f}{half} | {m.after:.4f} | "
                    f"{m.after - m.before:+.4f} |")
            lines.append("")
    return "\n".join(lines)
