"""Markdown leaderboard built from stored records only (never from live objects).

One table per (dataset, split, metric options); one row per (adapter, parameters label).
Each cell is the mean over folds +- the 95% interval half-width: Student-t over folds when
there are several, otherwise the interval over users (ranking) or ratings (RMSE / MAE)
stored in the record.  A metric a model does not produce is left blank, never zero.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import significance  # significance marks
from bench.metrics import lower_is_better, t_interval

RATING_COLUMNS = ("rmse", "mae")
RANKING_NAMES = {
    "ndcg": "NDCG",
    "precision": "P",
    "recall": "R",
    "map": "MAP",
    "hit_rate": "Hit",
    "mrr": "MRR",
    "coverage": "Cov",
}
TIME_COLUMNS = {
    "fit_seconds": "fit s",
    "predict_seconds": "predict s",
    "recommend_seconds": "rank s",
}


def table_key(rec: dict) -> tuple:
    return (
        rec.get("group") or rec.get("suite", ""),
        rec["dataset"],
        json.dumps(rec["split"], sort_keys=True),
        json.dumps(rec.get("metric_options", {}), sort_keys=True),
    )


def table_order(key: tuple) -> tuple:
    """Tables by dataset, then split method, then numeric split options (n=1 before n=10)."""
    split = json.loads(key[2])
    numbers = tuple(sorted((k, float(v)) for k, v in split.items() if isinstance(v, int | float)))
    return (key[1], split.get("method", ""), numbers, key[3])


def row_key(rec: dict) -> tuple:
    return (
        rec["adapter"],
        rec.get("label", "defaults"),
        json.dumps(rec["params"], sort_keys=True),
        rec.get("threads"),
        rec.get("cold_path", ""),
    )


def row_labels(keys: list[tuple]) -> dict[tuple, str]:
    """What tells rows of one adapter apart: the parameters (and threads) that vary.

    ``defaults`` when an adapter has a single untuned row; ``tuned: ...`` lists the
    parameters where the tuned row differs from the same adapter's defaults row.
    """
    by_adapter: dict[str, list[tuple]] = defaultdict(list)
    for key in keys:
        by_adapter[key[0]].append(key)
    out: dict[tuple, str] = {}
    for rows in by_adapter.values():
        params = {k: json.loads(k[2]) for k in rows}
        untuned = [k for k in rows if k[1] == "defaults"]
        varying = sorted({
            p for k in untuned for p, v in params[k].items()
            if any(params[o].get(p) != v for o in untuned)
        })
        vary_threads = len({k[3] for k in rows}) > 1
        reference = params[untuned[0]] if len(untuned) == 1 else {}
        for k in rows:
            # a parameter absent from a row (recorded before it existed) is not shown
            parts = [f"{p}={params[k][p]}" for p in varying if p in params[k]]
            if k[1] != "defaults":
                parts = [f"{p}={v}" for p, v in sorted(params[k].items())
                         if reference.get(p, object()) != v]
            if vary_threads:
                parts.append(f"threads={k[3]}")
            text = ", ".join(parts)
            if k[1] != "defaults":
                out[k] = f"{k[1]}: {text}" if text else f"{k[1]} (= defaults)"
            else:
                out[k] = text or "defaults"
    return out


def relevance_text(options: dict) -> str:
    thr = options.get("threshold")
    return "every test item relevant" if thr is None else f"relevant = test rating >= {thr:g}"


def columns_for(records: list[dict]) -> list[str]:
    present = {k for r in records for k, v in (r.get("metrics") or {}).items() if v is not None}
    cols = [c for c in RATING_COLUMNS if c in present]
    ks = sorted({int(k.split("@")[1]) for k in present if "@" in k})
    for k in ks:
        cols += [f"{m}@{k}" for m in RANKING_NAMES if f"{m}@{k}" in present]
    return cols


def header_name(col: str) -> str:
    if "@" in col:
        m, k = col.split("@")
        return f"{RANKING_NAMES[m]}@{k}"
    return col.upper()


def aggregate(recs: list[dict], col: str, timing: bool = False) -> tuple[float, float]:
    values = [r.get(col) if timing else (r.get("metrics") or {}).get(col) for r in recs]
    vals = np.array([v for v in values if v is not None], dtype=np.float64)
    if vals.size == 0:
        return math.nan, math.nan
    if timing:
        return float(vals.mean()), math.nan
    if vals.size == 1:
        half = (recs[0].get("intervals") or {}).get(col)
        return float(vals[0]), math.nan if half is None else float(half)
    return t_interval(vals)


def fmt(mean: float, half: float, digits: int) -> str:
    if math.isnan(mean):
        return ""
    s = f"{mean:.{digits}f}"
    return s if math.isnan(half) else f"{s} ± {half:.{digits}f}"


def render_table(recs: list[dict], results_dirs: list | None = None) -> list[str]:
    ok = [r for r in recs if r["status"] == "ok"]
    cols = columns_for(ok)
    rows: dict[tuple, list[dict]] = defaultdict(list)
    for r in ok:
        rows[row_key(r)].append(r)
    n_folds = max((len({r["fold"] for r in rs}) for rs in rows.values()), default=0)
    cells: dict[tuple, dict[str, tuple[float, float]]] = {}
    for key, rs in rows.items():
        cells[key] = {c: aggregate(rs, c) for c in cols}
        cells[key].update({t: aggregate(rs, t, timing=True) for t in TIME_COLUMNS})
    best: dict[str, float] = {}
    for c in [*cols, *TIME_COLUMNS]:
        vals = [cells[k][c][0] for k in cells if not math.isnan(cells[k][c][0])]
        if vals:
            best[c] = min(vals) if lower_is_better(c) else max(vals)
    head = ["model", "params", *map(header_name, cols), *TIME_COLUMNS.values(), "folds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # Rank by RMSE where most rows predict ratings (the Surprise table), else by NDCG.
    n_rmse = sum(not math.isnan(cells[k].get("rmse", (math.nan,))[0]) for k in cells)
    ndcg = next((c for c in cols if c.startswith("ndcg")), None)
    sort_col = "rmse" if n_rmse * 2 > len(cells) or ndcg is None else ndcg
    if sort_col not in cols:
        sort_col = cols[0] if cols else None

    def order(key: tuple) -> tuple:
        if sort_col is None:
            return (0.0, key)
        v = cells[key][sort_col][0]
        sign = 1 if lower_is_better(sort_col) else -1
        return (math.inf if math.isnan(v) else sign * v, key)

    labels = row_labels(list(cells))
    # --- significance marks (bench.significance): per-user paired test vs the best row ---
    marks = {}
    if results_dirs and sort_col:
        marks = significance.mark_table(ok, results_dirs, sort_col)
    # --- end significance marks ---
    for key in sorted(cells, key=order):
        adapter, cold_path = key[0], key[4]
        model = f"`{adapter}`" + (f" ({cold_path.replace('_', '-')})" if cold_path else "")
        row = [model, labels[key]]
        for c in [*cols, *TIME_COLUMNS]:
            mean, half = cells[key][c]
            digits = 2 if c in TIME_COLUMNS else 4
            text = fmt(mean, half, digits)
            if text and c in best and mean == best[c]:
                text = f"**{text}**"
            if text and c == sort_col:  # significance mark
                text += significance.marker(marks.get(key))
            row.append(text)
        row.append(f"{len(rows[key])}/{n_folds}" if n_folds > 1 else str(len(rows[key])))
        lines.append("| " + " | ".join(row) + " |")
    if not cells:
        lines = []
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
        f"- recbench commit: {env.get('git_commit')}",
    ]


def render(
    records: list[dict], sources: list[str], command: str, figures: list[str] | None = None
) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    suites = sorted({r.get("suite", "") for r in records})
    lines = [
        "# recbench leaderboard",
        "",
        f"Generated {date} by `python -m bench report` from {len(records)} stored trial "
        f"records ({', '.join(sources)}); suites: {', '.join(suites)}.",
        f"Reproduce: `{command}`",
        "",
        *env_summary(records),
        "",
        "Cells are mean ± 95% interval (Student-t over folds; with one fold, over users for "
        "ranking metrics and over test ratings for RMSE / MAE). Ranking metrics rank every "
        "item the user has not rated in train; ties broken in one fixed pseudo-random item "
        "order. Best value per column in bold; blank = the model does not produce that "
        "metric. Times are seconds per fold (fit excludes conversion into the library's "
        "format). Figures (quality vs fit time, ablations, cold start) are listed at the end.",
        "",
        significance.legend("the sort column (NDCG)"),  # significance marks
    ]
    tables: dict[tuple, list[dict]] = defaultdict(list)
    n_validation = 0
    for r in records:
        if r.get("stage", "test") == "validation":
            n_validation += 1  # tuning candidates: scored on validation, not on test
            continue
        tables[table_key(r)].append(r)
    if n_validation:
        lines += [
            "",
            f"Rows labelled `tuned` use the best of {n_validation} candidate settings scored on "
            "a validation split carved from each fold's train rows (test rows never read); "
            "`defaults` rows use each library's defaults.",
        ]
    groups = sorted({k[0] for k in tables}, key=lambda g: (g != "quick", g.startswith("abl"), g))
    for group in groups:
        lines += ["", f"## Suite `{group}`"]
        for key in sorted((k for k in tables if k[0] == group), key=table_order):
            recs = tables[key]
            first = recs[0]
            seed = first["split"]["seed"]
            title = f"{first['dataset']} · {first.get('split_label', '')} (seed {seed})"
            options = first.get("metric_options", {})
            extra = " · ranked among cold items only" if options.get("candidates") == "cold" else ""
            if options.get("curve"):
                extra += f" · {options['curve']} curve recorded per iteration (see figures)"
            lines += ["", f"### {title} · {relevance_text(options)}{extra}", ""]
            lines += render_table(recs, significance.results_dirs(sources))  # significance
    if figures:
        lines += ["", "## Figures", "", "Generated from the same records by `bench report`:", ""]
        lines += [f"- [{Path(f).stem}]({f})" for f in sorted(figures)]
    return "\n".join(lines) + "\n"
