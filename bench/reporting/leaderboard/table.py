"""One leaderboard table (one dataset, split and metric definition): a row per (adapter,
parameters label, threads, cold path) pooling its records over folds AND model seeds.

Each cell is the mean of the row's records +- the 95% interval half-width:

* one seed (today's suites): Student-t over folds when there are several, otherwise the
  interval over users (ranking) or ratings (RMSE / MAE) stored in the record;
* several seeds: the mean over every (seed, fold) record, +- the Student-t half-width over
  the per-seed means (each seed's mean over its folds), so the interval is seed-to-seed
  variation; the table then has a ``seeds`` column.

A metric a model does not produce is left blank, never zero.  Marks: ``SIDE_MARK`` after
the model name when the adapter reads side information (``Adapter.uses_side_features``);
bold = best of the column, italic = best among pure collaborative rows when that differs;
a significance mark (handed in as ``marks``, see ``bench.reporting.significance.Marks``) =
not significantly different from the best; ``HARNESS_MARK`` on
the predict / rank times of adapters whose scoring is recbench's vectorised code
(``Adapter.scored_by_harness``).  Adapter classes are looked up by name in
``bench.execution.registry``; a name no longer registered is shown as pure collaborative
filtering and named in a note under its table.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from bench.evaluation.metrics import lower_is_better
from bench.execution.record import (
    QUIET_OTHER_CPUS,
    RowKey,
    aggregate,
    by_row,
    host_quiet,
    n_seeds,
    row_key,
)
from bench.reporting.text import RANKING_NAMES, RATING_COLUMNS, header_name

TIME_COLUMNS = {
    "fit_seconds": "fit s",
    "predict_seconds": "predict s",
    "recommend_seconds": "rank s",
}
#: After the model name of a row whose adapter reads side information (genres, demographics).
SIDE_MARK = " ◆"
#: After the model name of a row trained by lock-free parallel SGD on several threads.
DRAW_MARK = " ≈"
#: After the predict / rank times of adapters scored by recbench's vectorised code.
HARNESS_MARK = " ‡"
HARNESS_COLUMNS = ("predict_seconds", "recommend_seconds")


def adapter_flag(name: str, attr: str) -> bool | None:
    """Class attribute ``attr`` of the adapter registered as ``name``; None when unknown
    (no longer registered, or its library is not installed here)."""
    from bench.execution import registry  # imports the adapter modules: only when a report is built

    try:
        cls = registry.get(name)
    except Exception:  # noqa: BLE001 - an unknown adapter must not break the report
        return None
    return bool(getattr(cls, attr, False))


def record_flag(records: list[dict], field: str, attr: str) -> bool | None:
    """A row's mark from what its trials recorded (``field``, e.g. ``side_information``);
    records written before the field existed fall back to the adapter's class attribute
    ``attr`` (None when that adapter is not importable here)."""
    values = [r[field] for r in records if r.get(field) is not None]
    if values:
        return any(bool(v) for v in values)
    return adapter_flag(records[0]["adapter"], attr) if records else None


def defaults_text(records: list[dict]) -> str:
    """The params cell of an untuned row run at its adapter's defaults: whose defaults
    they are (``defaults_by`` / ``recbench_defaults`` in the records; plain ``defaults``
    in records written before)."""
    rec = records[0]
    by = rec.get("defaults_by")
    if by is None:
        return "defaults"
    if by != "library":
        return f"{by} defaults"
    ours = [p for p in rec.get("recbench_defaults") or [] if p in (rec.get("params") or {})]
    if not ours:
        return "library defaults"
    values = ", ".join(f"{p}={rec['params'][p]}" for p in ours)
    return f"library defaults but recbench's {values}"


def busy_note(recs: list[dict]) -> list[str]:
    """A warning above a table some of whose trials ran while other processes kept the
    host busy (``host_load.other_cpus`` over ``QUIET_OTHER_CPUS``): its times are not a
    result.  Records without ``host_load`` are not judged."""
    timed = [r for r in recs if r.get("fit_seconds") is not None]
    busy = [r for r in timed if host_quiet(r) is False]
    if not busy:
        return []
    worst = max(float(r["host_load"]["other_cpus"]) for r in busy)
    return [f"> **Timings not a result**: {len(busy)} of {len(timed)} trials of this table "
            f"ran while other processes kept the host busy (up to {worst:.2f} cores on "
            f"average, quiet = at most {QUIET_OTHER_CPUS:g}; `host_load` in the records): "
            "re-run it on a quiet machine before reading its times.", ""]


class Marks(Protocol):
    """Significance marks for the sort column (``bench.reporting.significance.Marks``)."""

    def table(self, records: list[dict], metric: str) -> Mapping[RowKey, Any]: ...

    def suffix(self, result: Any) -> str: ...

    def legend(self, column: str) -> str: ...


def _tuned_text(choices: list[dict], reference: dict) -> str:
    """What nested tuning chose, against the defaults: ``factors=64`` when every fold chose
    it, ``factors=64 (3 folds) / 32 (2)`` when folds differ."""
    names = sorted({p for c in choices for p, v in c.items() if reference.get(p, object()) != v})
    parts = []
    for p in names:
        counts = Counter(json.dumps(c.get(p)) for c in choices)
        if len(counts) == 1:
            parts.append(f"{p}={json.loads(next(iter(counts)))}")
        else:
            ranked = counts.most_common()
            first, n = ranked[0]
            rest = " / ".join(f"{json.loads(v)} ({m})" for v, m in ranked[1:])
            parts.append(f"{p}={json.loads(first)} ({n} folds) / {rest}")
    return ", ".join(parts)


def row_labels(
    keys: list[RowKey], tuned_choices: dict[RowKey, list[dict]] | None = None
) -> dict[RowKey, str]:
    """What tells rows of one adapter apart: the parameters (and threads) that vary.

    ``defaults`` when an adapter has a single untuned row; ``tuned: ...`` lists the
    parameters where the tuned row differs from the same adapter's defaults row
    (``tuned_choices``: the parameters of each of a tuned row's records, one per fold).
    """
    tuned_choices = tuned_choices or {}
    by_adapter: dict[str, list[RowKey]] = defaultdict(list)
    for key in keys:
        by_adapter[key.adapter].append(key)
    out: dict[RowKey, str] = {}
    for rows in by_adapter.values():
        params = {k: k.param_dict for k in rows}
        untuned = [k for k in rows if k.label == "defaults"]
        varying = sorted({
            p for k in untuned for p, v in params[k].items()
            if any(params[o].get(p) != v for o in untuned)
        })
        vary_threads = len({k.threads for k in rows}) > 1
        reference = params[untuned[0]] if len(untuned) == 1 else {}
        for k in rows:
            # a parameter absent from a row (recorded before it existed) is not shown
            parts = [f"{p}={params[k][p]}" for p in varying if p in params[k]]
            if k.label != "defaults":
                parts = [_tuned_text(tuned_choices.get(k, [params[k]]), reference)]
                parts = [p for p in parts if p]
            if vary_threads:
                parts.append(f"threads={k.threads}")
            text = ", ".join(parts)
            if k.label != "defaults":
                out[k] = f"{k.label}: {text}" if text else f"{k.label} (= defaults)"
            else:
                out[k] = text or "defaults"
    return out


def labels_for(rows: Mapping[RowKey, list[dict]]) -> dict[RowKey, str]:
    """``row_labels`` of a table's rows (key -> its records), an untuned row at its
    adapter's defaults saying whose defaults they are (``defaults_text``)."""
    labels = row_labels(list(rows), {
        k: [r["params"] for r in sorted(rs, key=lambda r: r["fold"])]
        for k, rs in rows.items() if k.label == "tuned"
    })
    return {k: defaults_text(rows[k]) if text == "defaults" else text
            for k, text in labels.items()}


def columns_for(records: list[dict]) -> list[str]:
    present = {k for r in records for k, v in (r.get("metrics") or {}).items() if v is not None}
    cols = [c for c in RATING_COLUMNS if c in present]
    ks = sorted({int(k.split("@")[1]) for k in present if "@" in k})
    for k in ks:
        cols += [f"{m}@{k}" for m in RANKING_NAMES if f"{m}@{k}" in present]
    return cols


def fmt(mean: float, half: float, digits: int) -> str:
    if math.isnan(mean):
        return ""
    s = f"{mean:.{digits}f}"
    return s if math.isnan(half) else f"{s} ± {half:.{digits}f}"


def thread_count_text(n: int | None) -> str:
    return "unknown" if n is None else f"{n} thread" + ("" if n == 1 else "s")


def sort_column(ok: list[dict]) -> str | None:
    """The column a table is ranked by: RMSE where most rows predict ratings (the Surprise
    table), else NDCG; ``ok``: the table's finished records."""
    cols = columns_for(ok)
    rows = by_row(ok)
    n_rmse = sum(not math.isnan(aggregate(rs, "rmse")[0]) for rs in rows.values())
    ndcg = next((c for c in cols if c.startswith("ndcg")), None)
    sort_col = "rmse" if n_rmse * 2 > len(rows) or ndcg is None else ndcg
    if sort_col not in cols:
        sort_col = cols[0] if cols else None
    return sort_col


def render_table(recs: list[dict], marks: Marks | None = None) -> list[str]:
    """One table's markdown lines; ``marks`` adds significance marks to the sort column."""
    ok = [r for r in recs if r["status"] == "ok"]
    cols = columns_for(ok)
    rows: dict[RowKey, list[dict]] = defaultdict(list)
    for r in ok:
        rows[row_key(r)].append(r)
    n_folds = max((len({r["fold"] for r in rs}) for rs in rows.values()), default=0)
    cells: dict[RowKey, dict[str, tuple[float, float]]] = {}
    for key, rs in rows.items():
        cells[key] = {c: aggregate(rs, c) for c in cols}
        cells[key].update({t: aggregate(rs, t, timing=True) for t in TIME_COLUMNS})
    side = {key: record_flag(rows[key], "side_information", "uses_side_features")
            for key in cells}
    by_harness = {key: record_flag(rows[key], "scored_by_harness", "scored_by_harness")
                  for key in cells}
    seeds = {key: n_seeds(rs) for key, rs in rows.items()}
    multi_seed = any(n > 1 for n in seeds.values())

    def best_of(keys: list[RowKey]) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in [*cols, *TIME_COLUMNS]:
            vals = [cells[k][c][0] for k in keys if not math.isnan(cells[k][c][0])]
            if vals:
                out[c] = min(vals) if lower_is_better(c) else max(vals)
        return out

    best = best_of(list(cells))
    # Best among pure collaborative rows (an unknown adapter counts as pure CF, see notes).
    cf_best = best_of([k for k in cells if not side[k]]) if any(side.values()) else best
    # Thread counts: "fit s" when all at one thread; the count in the header when uniform.
    thread_rows = Counter(key.threads for key in cells)
    fit_head = TIME_COLUMNS["fit_seconds"]
    if len(thread_rows) == 1 and (only := next(iter(thread_rows))) not in (None, 1):
        fit_head += f" ({thread_count_text(only)})"
    time_heads = [fit_head if t == "fit_seconds" else h for t, h in TIME_COLUMNS.items()]
    head = ["model", "params", *map(header_name, cols), *time_heads]
    head += ["seeds", "folds"] if multi_seed else ["folds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sort_col = sort_column(ok)

    def order(key: RowKey) -> tuple:
        if sort_col is None:
            return (0.0, key)
        v = cells[key][sort_col][0]
        sign = 1 if lower_is_better(sort_col) else -1
        return (math.inf if math.isnan(v) else sign * v, key)

    labels = labels_for(rows)
    # significance marks: per-user paired test against the best row on the sort column
    marked = marks.table(ok, sort_col) if marks is not None and sort_col else {}
    for key in sorted(cells, key=order):
        adapter, cold_path = key.adapter, key.cold_path
        model = f"`{adapter}`" + (f" ({cold_path.replace('_', '-')})" if cold_path else "")
        if side[key]:
            model += SIDE_MARK
        if not reproducible(key, rows[key]):
            model += DRAW_MARK
        row = [model, labels[key]]
        for c in [*cols, *TIME_COLUMNS]:
            mean, half = cells[key][c]
            digits = 2 if c in TIME_COLUMNS else 4
            text = fmt(mean, half, digits)
            if text and c in best and mean == best[c]:
                text = f"**{text}**"
            elif text and c in cf_best and mean == cf_best[c]:
                text = f"*{text}*"  # best among pure collaborative rows
            if text and c == sort_col and marks is not None:  # significance mark
                text += marks.suffix(marked.get(key))
            if text and c in HARNESS_COLUMNS and by_harness[key]:
                text += HARNESS_MARK
            row.append(text)
        if multi_seed:
            row.append(str(seeds[key]))
        # several seeds: folds counted once per fold, not once per (seed, fold) record
        n_row = len(rows[key]) if seeds[key] == 1 else len({r["fold"] for r in rows[key]})
        row.append(f"{n_row}/{n_folds}" if n_folds > 1 else str(n_row))
        lines.append("| " + " | ".join(row) + " |")
    if not cells:
        lines = []
    else:
        lines = busy_note(ok) + lines
    if len(thread_rows) > 1:
        parts = []
        for n, count in sorted(thread_rows.items(), key=lambda x: (x[0] is None, x[0] or 0)):
            names = sorted({k.adapter for k in cells if k.threads == n})
            who = ", ".join(f"`{a}`" for a in names) if len(names) <= 4 else f"{count} rows"
            parts.append(f"{thread_count_text(n)} ({who})")
        lines.append(
            f"\nfit times in this table come from different thread counts: {'; '.join(parts)}. "
            "Compare fit times only between rows at the same count."
        )
    lines += concurrency_note(ok)  # executors: trials run at once
    unknown = sorted({k.adapter for k in cells if side[k] is None})
    if unknown:
        lines.append(
            f"\nSide information unknown for {', '.join(f'`{a}`' for a in unknown)} (adapter "
            "not registered here): shown without the mark and counted as pure collaborative."
        )
    bad = [r for r in recs if r["status"] not in ("ok", "skipped")]
    for r in sorted(bad, key=lambda r: (r["adapter"], r["fold"])):
        err = str(r.get("error") or "").splitlines()[0][:200] if r.get("error") else ""
        lines.append(f"\n- `{r['adapter']}` fold {r['fold']}: **{r['status']}** {err}")
    skipped: dict[str, int] = defaultdict(int)
    for r in recs:
        if r["status"] == "skipped":
            skipped[str(r.get("error") or "").split(";")[0]] += 1
    for reason, n in sorted(skipped.items()):
        lines.append(f"\n{n} trial(s) skipped: {reason}.")
    return lines


def concurrency_note(recs: list[dict]) -> list[str]:
    """A warning when the fit times of one table were measured with different numbers of
    trials running at once on their host (``env.concurrent_trials``; records without it
    ran one at a time): such times compete for cores and are not comparable."""
    counts = Counter(
        int((r.get("env") or {}).get("concurrent_trials") or 1)
        for r in recs if r.get("fit_seconds") is not None
    )
    if len(counts) < 2:
        return []
    parts = ", ".join(f"{n} at once ({c} trial{'s' if c > 1 else ''})"
                      for n, c in sorted(counts.items()))
    return [f"\nfit times in this table come from different concurrency: {parts}. Compare "
            "fit times only between trials run with the same number of trials at once "
            "(`--executor serial`, or a suite with `jobs = 1`, for timing)."]


def reproducible(key: RowKey, records: list[dict] | None = None) -> bool:
    """Whether a row's numbers repeat run to run: the records' ``reproducible`` (records
    before the field existed: from the adapter's ``parallel_sgd`` and the thread count)."""
    said = [r["reproducible"] for r in records or [] if r.get("reproducible") is not None]
    if said:
        return all(bool(v) for v in said)
    threads = key.threads or 1
    return not (threads > 1 and adapter_flag(key.adapter, "parallel_sgd"))
