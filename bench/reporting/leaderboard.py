"""Markdown leaderboard built from stored records only (never from live objects).

One table per (dataset, split, metric options); one row per (adapter, parameters label,
threads, cold path): a row pools every record of that model over folds AND model seeds.
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
``bench.registry``; a name no longer registered is shown as pure collaborative filtering
and named in a note under its table.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench.metrics import lower_is_better
from bench.record import (
    QUIET_OTHER_CPUS,
    RowKey,
    TableKey,
    aggregate,
    by_row,
    host_quiet,
    is_test_stage,
    n_seeds,
    row_key,
    table_key,
)
from bench.reporting.text import (
    RANKING_NAMES,
    RATING_COLUMNS,
    header_name,
    relevance_text,
    sort_column_text,
)

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

#: Which published figures a table's protocol is comparable with: (split fields, metric
#: options, text).  A field matches when the record's value is one of the allowed values
#: (None = absent).  Adding a protocol is one entry.
PROTOCOL_NOTES: list[tuple[dict[str, tuple], dict[str, tuple], str]] = [
    (
        {"method": ("item_stratified",), "test_fraction": (0.25,), "train_fraction": (None,)},
        {"threshold": (None,), "candidates": (None, "all")},
        "Item-stratified 75/25 split, every test item relevant: Microsoft Recommenders' "
        "benchmark protocol (`python_stratified_split(filter_by=\"item\", ratio=0.75)` in "
        "their `examples/06_benchmarks/movielens.ipynb`; their own seed, so other rows). "
        "Comparable to their ML-100k table's NDCG@10, precision and recall; their MAP divides "
        "by #relevant, and their ALS RMSE drops pairs without factors (`coldStartStrategy="
        "\"drop\"`) where recbench scores them with the train mean.",
    ),
    (
        {"method": ("stratified",), "test_fraction": (0.25,), "train_fraction": (None,)},
        {"threshold": (None,), "candidates": (None, "all")},
        "Per-user stratified 75/25 split, every test item relevant: not Microsoft "
        "Recommenders' benchmark split, which is stratified by item (see the item-stratified "
        "tables of the `msr-anchors` suite); their figures do not compare with this table.",
    ),
    (
        {"method": ("random",), "test_fraction": (0.2,), "train_fraction": (None,)},
        {"threshold": (4,), "candidates": (None, "all")},
        "Random 80/20 hold-out, relevant = rating >= 4, full-catalogue ranking: the protocol "
        "of Cornac's README figures (their seed 123 split differs).",
    ),
    (
        {"method": ("kfold",), "n_folds": (5,), "train_fraction": (None,)},
        {"candidates": (None, "all")},
        "5 random folds of one permutation (Surprise's KFold rule, not its random stream): "
        "comparable to Surprise's README RMSE/MAE table.",
    ),
]


def protocol_note(split: dict, options: dict) -> str | None:
    """The published figures a table is comparable with (``PROTOCOL_NOTES``), or None."""
    for want_split, want_options, text in PROTOCOL_NOTES:
        if all(split.get(k) in allowed for k, allowed in want_split.items()) and all(
            options.get(k) in allowed for k, allowed in want_options.items()
        ):
            return text
    return None


def adapter_flag(name: str, attr: str) -> bool | None:
    """Class attribute ``attr`` of the adapter registered as ``name``; None when unknown
    (no longer registered, or its library is not installed here)."""
    from bench import registry  # imports the adapter modules: only when a report is built

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


def table_order(key: TableKey) -> tuple:
    """Tables by dataset, then split method, then numeric split options (n=1 before n=10)."""
    split = key.split_spec
    numbers = tuple(sorted((k, float(v)) for k, v in split.items() if isinstance(v, int | float)))
    return (key.dataset, split.get("method", ""), numbers, key.metric_options)


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


def _thread_text(n: int | None) -> str:
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
        fit_head += f" ({_thread_text(only)})"
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
            parts.append(f"{_thread_text(n)} ({who})")
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


def commit_summary(records: list[dict]) -> str:
    """Every distinct ``env.git_commit`` with its number of records, most records first."""
    commits = Counter(
        (r["env"].get("git_commit") or "unknown") for r in records if r.get("env")
    )
    if not commits:
        return ""
    listed = ", ".join(
        f"{c} ({n} record{'s' if n != 1 else ''})"
        for c, n in sorted(commits.items(), key=lambda x: (-x[1], x[0]))
    )
    no_env = [r for r in records if not r.get("env")]
    if no_env:
        never_run = all(r.get("status") == "skipped" for r in no_env)
        listed += f"; {len(no_env)} " + (
            "skipped trial record(s) (never run, no environment)" if never_run
            else "record(s) without environment"
        )
    if len(commits) == 1:
        return f"- recbench commit: {listed}"
    return f"- recbench commits: records come from {len(commits)} commits (mixed): {listed}"


def stale_note(stale: list[dict]) -> list[str]:
    counts = Counter((r["dataset"], r.get("dataset_fingerprint")) for r in stale)
    return [
        f"- Left out: {n} record(s) of `{name}` computed on earlier contents of that dataset "
        f"(fingerprint {fp}); re-run the suite to replace them"
        for (name, fp), n in sorted(counts.items())
    ]


def env_summary(records: list[dict]) -> list[str]:
    envs = [r["env"] for r in records if r.get("env")]
    if not envs:
        return []
    env = envs[-1]
    versions: dict[str, str] = {}
    for e in envs:
        versions.update({k: v for k, v in (e.get("versions") or {}).items() if v})
    vtext = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    threads = sorted({r.get("threads") for r in records if r.get("threads")})
    return [
        f"- Hardware: {env.get('cpu')}, {env.get('cores')} cores, {env.get('memory_gb')} GiB",
        f"- Python {env.get('python')}; {vtext}",
        f"- Threads per trial: {', '.join(map(str, threads))} (BLAS, OpenMP and numba pinned)",
        commit_summary(records),
    ]


def candidate_counts(records: list[dict]) -> dict[str, str]:
    """Tuning candidates per model: distinct parameter settings among its validation records
    per (dataset, split, fold); a range when those differ."""
    settings: dict[tuple, set[str]] = defaultdict(set)
    for r in records:
        if not is_test_stage(r):
            where = (r["adapter"], r.get("dataset"), json.dumps(r.get("split"), sort_keys=True),
                     r.get("fold"))
            settings[where].add(json.dumps(r.get("params"), sort_keys=True))
    per_adapter: dict[str, list[int]] = defaultdict(list)
    for where, params in settings.items():
        per_adapter[where[0]].append(len(params))
    return {
        a: str(min(n)) if min(n) == max(n) else f"{min(n)}–{max(n)}"
        for a, n in sorted(per_adapter.items())
    }


METRIC_DEFINITIONS = (
    "Relevant items as each table heading says; Recall@K = hits in the top K / #relevant, "
    "MAP@K = sum of precision at each hit in the top K / min(#relevant, K), NDCG@K with "
    "binary gains, log2 discounts and an ideal list of min(#relevant, K) hits; each averaged "
    "over test users with at least one relevant item."
)
DEFAULTS_TEXT = (
    "Untuned rows run at defaults, and say whose: `library defaults` are the wrapped "
    "library's own; `recbench defaults` are ours (in-house models, chosen on seeded "
    "synthetic data, never on a dataset that is scored; and models a library does not "
    "have as such, e.g. scipy's PureSVD); `library defaults but recbench's ...` names the "
    "parameters where recbench chose another value than the library's default."
)
HARNESS_TEXT = (
    f"{HARNESS_MARK.strip()} predictions and rankings computed by recbench's vectorised "
    "scorer, equal to the library's own predict; the library's own predict loop is slower."
)


def legend(tested: list[dict]) -> list[str]:
    """Paragraphs explaining the tables' cells and marks (``tested``: stage-test records)."""
    threads = sorted({r.get("threads") for r in tested}, key=lambda n: (n is None, n or 0))
    if threads == [1]:
        thread_text = "All times at one thread."
    else:
        thread_text = (
            f"Times at each trial's thread count ({', '.join(map(_thread_text, threads))}): "
            "a table whose trials all ran at more than one thread names the count in its "
            "`fit s` header; a table mixing thread counts says so under it."
        )
    out = [
        "Cells are mean ± 95% interval (Student-t over folds; with one fold, over users for "
        "ranking metrics and over test ratings for RMSE / MAE). A row run with several model "
        "seeds (`seeds` column, when a table has one) pools every (seed, fold) record: the "
        "cell is their mean and ± is over seeds (Student-t over the per-seed means, each "
        "seed's mean over its folds). Ranking metrics rank every "
        "item the user has not rated in train; ties broken in one fixed pseudo-random item "
        f"order. {METRIC_DEFINITIONS} Best value per column in bold; blank = the model does "
        "not produce that metric. Times are seconds per fold (fit excludes conversion into "
        f"the library's format). {thread_text} Figures (quality vs fit time, ablations, cold "
        "start) are listed at the end.",
    ]
    by_adapter: dict[str, list[dict]] = defaultdict(list)
    for r in tested:
        by_adapter[r["adapter"]].append(r)
    if any(record_flag(rs, "side_information", "uses_side_features")
           for rs in by_adapter.values()):
        out += [
            "",
            f"{SIDE_MARK.strip()} after a model: it reads side information (item genres, user "
            "demographics) besides the ratings; rows without it are pure collaborative "
            "filtering. Bold = best of the whole table; *italic* = best among the pure "
            "collaborative rows, shown where that is not the bold cell.",
        ]
    if any(record_flag(rs, "scored_by_harness", "scored_by_harness")
           for rs in by_adapter.values()):
        out += ["", HARNESS_TEXT]
    if any(not reproducible(row_key(r), [r]) for r in tested):
        out += ["", f"{DRAW_MARK.strip()} after a model: trained by lock-free parallel SGD "
                "(Hogwild) on several threads, so the same trial gives other numbers on every "
                "run (records say `reproducible: false`): a single draw, not a result."]
    return out


def newest_start(records: list[dict]) -> str:
    """When the newest record's trial started (``started_at``), so the same records give
    the same leaderboard byte for byte; the time now when no record says."""
    starts = [datetime.fromisoformat(r["started_at"]) for r in records if r.get("started_at")]
    when = max(starts).astimezone(UTC) if starts else datetime.now(UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def reproducible(key: RowKey, records: list[dict] | None = None) -> bool:
    """Whether a row's numbers repeat run to run: the records' ``reproducible`` (records
    before the field existed: from the adapter's ``parallel_sgd`` and the thread count)."""
    said = [r["reproducible"] for r in records or [] if r.get("reproducible") is not None]
    if said:
        return all(bool(v) for v in said)
    threads = key.threads or 1
    return not (threads > 1 and adapter_flag(key.adapter, "parallel_sgd"))


def render(
    records: list[dict],
    sources: list[str],
    command: str,
    figures: list[str] | None = None,
    stale: list[dict] | None = None,
    marks: Marks | None = None,
) -> str:
    """The leaderboard of ``records``; ``stale`` records (computed on earlier contents of
    their dataset, see ``store.split_stale``) are only counted in a note; ``marks`` adds
    significance marks (and their legend) to each table's sort column."""
    date = newest_start(records)
    suites = sorted({r.get("suite", "") for r in records})
    tables: dict[TableKey, list[dict]] = defaultdict(list)
    for r in records:
        if not is_test_stage(r):
            continue  # tuning candidates: scored on validation, not on test
        tables[table_key(r)].append(r)
    tested = [r for rs in tables.values() for r in rs]
    lines = [
        "# recbench leaderboard",
        "",
        f"Generated by `python -m bench report` from {len(records)} stored trial "
        f"records ({', '.join(sources)}; the newest started {date}); suites: "
        f"{', '.join(suites)}.",
        f"Reproduce: `{command}`",
        "",
        *env_summary(records),
        *stale_note(stale or []),
        "",
        *legend(tested),
    ]
    if marks is not None:
        lines += ["", marks.legend(sort_column_text(
            sort_column([r for r in rs if r["status"] == "ok"]) for rs in tables.values()))]
    candidates = candidate_counts(records)
    if candidates:
        per_model = ", ".join(f"{a} {n}" for a, n in candidates.items())
        lines += [
            "",
            "Rows labelled `tuned` use the best of the model's candidate settings scored on a "
            "validation split carved from each fold's train rows (test rows never read); "
            f"candidate settings per model (per dataset, split and fold): {per_model}. "
            + DEFAULTS_TEXT,
        ]
    else:
        lines += ["", DEFAULTS_TEXT]
    groups = sorted({k.group for k in tables},
                    key=lambda g: (g != "quick", g.startswith("abl"), g))
    for group in groups:
        lines += ["", f"## Suite `{group}`"]
        for key in sorted((k for k in tables if k.group == group), key=table_order):
            recs = tables[key]
            first = recs[0]
            seed = first["split"]["seed"]
            title = f"{first['dataset']} · {first.get('split_label', '')} (seed {seed})"
            options = first.get("metric_options", {})
            extra = " · ranked among cold items only" if options.get("candidates") == "cold" else ""
            if options.get("curve"):
                extra += f" · {options['curve']} curve recorded per iteration (see figures)"
            lines += ["", f"### {title} · {relevance_text(options)}{extra}", ""]
            note = protocol_note(first["split"], options)
            if note:
                lines += [f"> {note}", ""]
            lines += render_table(recs, marks)
    if figures:
        lines += ["", "## Figures", "", "Generated from the same records by `bench report`:", ""]
        lines += [f"- [{Path(f).stem}]({f})" for f in sorted(figures)]
    return "\n".join(lines) + "\n"
