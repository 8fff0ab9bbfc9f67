"""The markdown leaderboard page, built from stored records only (never from live objects):
a header (sources, environment, commits, stale records), the legend of cells and marks, then
one section per suite group with one table per (dataset, split, metric options), each under
a note of the published figures its protocol is comparable with.  The tables themselves are
``table.render_table``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from bench.execution.record import TableKey, is_test_stage, row_key, table_key
from bench.reporting.leaderboard.table import (
    DRAW_MARK,
    HARNESS_MARK,
    SIDE_MARK,
    Marks,
    record_flag,
    render_table,
    reproducible,
    sort_column,
    thread_count_text,
)
from bench.reporting.text import relevance_text, sort_column_text

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


def table_order(key: TableKey) -> tuple:
    """Tables by dataset, then split method, then numeric split options (n=1 before n=10)."""
    split = key.split_spec
    numbers = tuple(sorted((k, float(v)) for k, v in split.items() if isinstance(v, int | float)))
    return (key.dataset, split.get("method", ""), numbers, key.metric_options)


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
            f"Times at each trial's thread count ({', '.join(map(thread_count_text, threads))}): "
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
