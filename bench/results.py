"""Stored results as pandas DataFrames: ``bench.results.load(DIR)``.

One row per trial record (the latest record of each trial, as every report reads them):
the record's scalar fields as columns, metrics under their own names (``ndcg@10``,
``rmse``), nested fields flattened with a dot (``params.factors``, ``split.method``,
``env.versions.numpy``, ``interval.ndcg@10`` for the 95% half-widths).  With
``per_user=True``: one row per (record, test user) with the per-user metric values the
store keeps beside the records (``runs/peruser/<trial_id>.npz``).

Keys and names added for reading across rows and libraries:

* ``row_key``: which leaderboard row a record belongs to (its table: suite group, dataset,
  split, metric options; its row: adapter, label, parameters, threads, cold path; and the
  stage), as a 16-hex digest: ``groupby("row_key")`` pools a row's folds and seeds and
  never two rows (``implicit.ALS`` at alpha=2 and at the library's defaults are both
  ``label == "defaults"``, but two row keys).  ``table_key`` likewise names the table;
* ``common.factors``, ``common.regularization``, ``common.iterations``,
  ``common.learning_rate``: the library's own parameter that means each, beside it under
  ``params.<its name>`` (``bench.execution.params``);
* ``started_at`` is a timezone-aware datetime column (UTC).

``topk(DIR, trial_id=...)`` gives the trials' stored top-K lists (raw user and item ids,
``runs/topk/<trial_id>.npz``, checked against the sha256 each record keeps), from which
metrics the run did not compute can be computed later.

``table(DIR)`` gives the leaderboard's rows themselves (mean and 95% half-width per
metric, ``bench.reporting.export``), ``to_csv`` / ``to_latex`` write it, and
``paired_test(DIR, row_a, row_b)`` compares two rows of one table on a metric with the
leaderboard's paired bootstrap (``bench.reporting.significance``).

Every reader of records in this module and in ``bench.site`` goes through ``read_records``.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import UserError
from bench.execution import params, store
from bench.execution import topk as topk_files
from bench.execution.record import row_key
from bench.reporting import export, significance

log = logging.getLogger(__name__)

#: nested record fields flattened into ``<prefix>.<key>`` columns
FLATTENED = {"params": "params", "split": "split", "metric_options": "metric_options",
             "env": "env", "intervals": "interval", "fitted": "fitted"}
#: fields kept out of the frame: bulky or only meaningful to the store
DROPPED = ("metrics", "bands", "spec_params", "checksum", "per_user_sha256", "topk_sha256")
#: the first columns of ``load``'s frame, before the metrics; the others sorted by name
FRONT = ("trial_id", "suite", "group", "dataset", "split_label", "fold", "adapter", "label",
         "stage", "seed", "threads", "status")
#: after ``FRONT``: the keys of the record's leaderboard row and table (``export.row_id``)
KEYS = ("row_key", "table_key")
#: identifying columns repeated on every per-user row
PER_USER_KEYS = ("trial_id", "suite", "group", "dataset", "split_label", "fold", "adapter",
                 "label", "stage", "seed", "threads")


def read_records(sources: Path | str | Iterable[Path | str]) -> list[dict]:
    """Every stored record (latest per trial) of results directories or ``.jsonl`` files,
    checked by the store; the one place this module and ``bench.site`` read records."""
    if isinstance(sources, str | Path):
        sources = [sources]
    return store.load([Path(s) for s in sources])


def _existing(sources: Path | str | Iterable[Path | str]) -> list[Path]:
    """``sources`` as paths, each of which must exist (``FileNotFoundError`` otherwise:
    a mistyped directory is not an empty result)."""
    paths = [Path(sources)] if isinstance(sources, str | Path) else [Path(s) for s in sources]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no results at {path}: not a results directory or a "
                                    ".jsonl file of records")
    return paths


def _flatten(prefix: str, value: dict, out: dict) -> None:
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, dict):
            _flatten(name, item, out)
        else:
            out[name] = item


def record_row(rec: dict) -> dict:
    """One record as a flat mapping of column -> value (see the module docstring)."""
    row: dict = {}
    for key, value in rec.items():
        if key in DROPPED:
            continue
        if key in FLATTENED and isinstance(value, dict):
            _flatten(FLATTENED[key], value, row)
        else:
            row[key] = value
    for name, value in (rec.get("metrics") or {}).items():
        row[name] = value
    for name, value in params.common(rec["adapter"], rec.get("params") or {}).items():
        row[f"common.{name}"] = value
    row["row_key"], row["table_key"] = export.row_id(rec), export.table_id(rec)
    return row


def frame(records: Iterable[dict]) -> pd.DataFrame:
    """Record dicts (e.g. what ``bench.run`` returns) as ``load``'s DataFrame, one row per
    record, columns in ``load``'s order (``stale`` is computed among ``records`` only)."""
    records = list(records)
    _, stale = store.split_stale(records)
    stale_ids = {r["trial_id"] for r in stale}
    frame = pd.DataFrame([record_row(r) for r in records])
    if frame.empty:
        return frame
    frame["stale"] = frame["trial_id"].isin(stale_ids)
    if "started_at" in frame.columns:
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
    metrics = list(dict.fromkeys(m for r in records for m in r.get("metrics") or {}))
    front = [c for c in (*FRONT, *KEYS, *metrics) if c in frame.columns]
    return frame[front + sorted(c for c in frame.columns if c not in front)]


def load(
    sources: Path | str | Iterable[Path | str], per_user: bool = False
) -> pd.DataFrame:
    """Records of results directories / ``.jsonl`` files as a DataFrame (see module doc).

    ``stale`` is True for records computed on earlier contents of their dataset (the
    leaderboard leaves those out).  ``per_user=True`` returns the per-user values instead:
    columns ``PER_USER_KEYS`` + ``row_key`` + ``user`` (the dataset's internal user index)
    + one column per stored metric; records whose per-user file is absent or damaged are
    left out with a warning (published results ship without them:
    ``results/*/runs/peruser`` is ignored by git).
    """
    sources = _existing(sources)
    records = read_records(sources)
    if per_user:
        return _per_user_frame(records, store.results_dirs(sources))
    return frame(records)


def per_user_arrays(rec: dict, dirs: list[Path]) -> dict[str, np.ndarray] | None:
    """Every array of a record's per-user file (``user`` + one per metric), or None when
    the record has none or it is absent or fails its recorded checksum."""
    if not rec.get("per_user_file"):
        return None
    for d in dirs:
        if (d / rec["per_user_file"]).is_file():
            if not store.per_user_intact(d, rec):
                return None
            try:
                with np.load(d / rec["per_user_file"]) as data:
                    return {name: data[name] for name in data.files}
            except (OSError, ValueError, zipfile.BadZipFile):
                return None
    return None


def _per_user_frame(records: list[dict], dirs: list[Path]) -> pd.DataFrame:
    parts = []
    missing = 0
    for rec in records:
        if rec.get("status") != "ok" or not rec.get("per_user_file"):
            continue
        arrays = per_user_arrays(rec, dirs)
        if arrays is None or "user" not in arrays:
            missing += 1
            continue
        part = pd.DataFrame(arrays)
        for i, key in enumerate(PER_USER_KEYS):
            part.insert(i, key, rec.get(key))
        part.insert(len(PER_USER_KEYS), "row_key", export.row_id(rec))
        parts.append(part)
    if missing:
        log.warning("%d record(s) without a readable per-user file left out (%s)",
                    missing, ", ".join(map(str, dirs)))
    if not parts:
        return pd.DataFrame(columns=[*PER_USER_KEYS, "row_key", "user"])
    return pd.concat(parts, ignore_index=True)


def topk(
    sources: Path | str | Iterable[Path | str], trial_id: str | Iterable[str] | None = None
) -> pd.DataFrame:
    """The stored top-K recommendation lists of trials (``runs/topk/<trial_id>.npz``) as a
    long DataFrame: ``PER_USER_KEYS`` + ``row_key``, then ``user`` and ``item`` (the
    dataset's raw ids), ``rank`` (1 = first) and ``user_index`` / ``item_index`` (internal
    codes; ``user_index`` is the per-user frame's ``user``), one row per listed item, best
    first.  K is the largest cut-off of the trial's metrics (the record's ``topk_k``); a
    user with fewer candidate items has fewer rows.

    ``trial_id`` (one id or several): those trials, each of which must have lists
    (``UserError`` otherwise).  Without it: every finished record that has lists; a file
    absent here (results copied without ``runs/topk``) is left out with a warning.  A file
    that does not match the sha256 its record keeps is always a ``UserError``."""
    paths = _existing(sources)
    records = read_records(paths)
    dirs = store.results_dirs(paths)
    if trial_id is not None:
        ids = [trial_id] if isinstance(trial_id, str) else list(trial_id)
        by_id = {r["trial_id"]: r for r in records}
        unknown = [t for t in ids if t not in by_id]
        if unknown:
            raise UserError(f"no record of trial {unknown[0]} in {', '.join(map(str, paths))}")
        chosen = [by_id[t] for t in ids]
    else:
        chosen = [r for r in records if r.get("status") == "ok" and r.get("topk_file")]
    parts, missing = [], 0
    for rec in chosen:
        where = next((d for d in dirs if (d / str(rec.get("topk_file"))).is_file()), dirs[0])
        try:
            lists = topk_files.read(where, rec)
        except FileNotFoundError:
            if trial_id is not None:
                raise
            missing += 1
            continue
        part = pd.DataFrame(topk_files.long_form(lists))
        for i, key in enumerate((*PER_USER_KEYS, "row_key")):
            part.insert(i, key, export.row_id(rec) if key == "row_key" else rec.get(key))
        parts.append(part)
    if missing:
        log.warning("%d record(s) whose top-K file is absent left out (%s)", missing,
                    ", ".join(map(str, dirs)))
    if not parts:
        return pd.DataFrame(columns=[*PER_USER_KEYS, "row_key", "user", "rank", "item",
                                     "user_index", "item_index"])
    return pd.concat(parts, ignore_index=True)


def table(sources: Path | str | Iterable[Path | str]) -> pd.DataFrame:
    """The leaderboard's rows as a DataFrame: one row per leaderboard row (finished test
    trials, stale records left out as the leaderboard does) with ``table_key``,
    ``row_key``, the model's label, ``rank`` by the table's ``sort_column``, each metric's
    mean and its 95% half-width (``<metric>.ci95``) and the mean times."""
    fresh, _ = store.split_stale(read_records(_existing(sources)))
    return export.frame(fresh)


def to_csv(frame: pd.DataFrame, path: Path | str | None = None) -> str:
    """``table(...)`` as CSV text, also written to ``path`` when given."""
    text = export.to_csv(frame)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def to_latex(frame: pd.DataFrame, path: Path | str | None = None) -> str:
    """``table(...)`` as LaTeX (one booktabs table per leaderboard table, best in bold),
    also written to ``path`` when given."""
    text = export.to_latex(frame)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def paired_test(
    sources: Path | str | Iterable[Path | str],
    row_a: str,
    row_b: str,
    metric: str = "ndcg@10",
    method: str = "bootstrap",
    seed: int = 0,
) -> dict:
    """Paired significance test of two leaderboard rows (``row_key`` values of one table)
    on ``metric``, from the per-user values stored with the records: the leaderboard's
    test (``significance.mark_table``: pairs matched by fold and user, users resampled as
    clusters, a two-level bootstrap when a row has several seeds).

    Returns ``mean_diff`` (row_a - row_b) with its 95% interval, the two-sided
    ``p_value``, and what was compared (``n_users``, ``n_pairs``, ``folds``, ``method``,
    ``note``).  ``UserError`` when a key names no row, the rows lie in different tables, or
    no per-user values pair them."""
    paths = _existing(sources)
    fresh, _ = store.split_stale(read_records(paths))
    chosen = {key: [r for r in fresh if r.get("status") == "ok"
                    and r.get("stage", "test") == "test" and export.row_id(r) == key]
              for key in (row_a, row_b)}
    for key, recs in chosen.items():
        if not recs:
            raise UserError(f"no finished test records with row_key {key!r} in "
                            f"{', '.join(map(str, paths))}")
        if all((r.get("metrics") or {}).get(metric) is None for r in recs):
            raise UserError(f"row {key} ({recs[0]['adapter']}) has no {metric}")
    if row_a == row_b:
        raise UserError("paired_test compares two different rows")
    if export.table_id(chosen[row_a][0]) != export.table_id(chosen[row_b][0]):
        raise UserError("the two rows lie in different tables (dataset, split or metric "
                        "options differ): their users cannot be paired")
    marks = significance.mark_table(chosen[row_a] + chosen[row_b], store.results_dirs(paths),
                                    metric, method=method, seed=seed)
    other = next(r for r in marks.values() if not r.is_best)
    if not other.tested:
        raise UserError(f"cannot test {metric} between these rows: {other.note}")
    # mark_table compares the other row with the better one: (other - best)
    sign = -1.0 if other.best == row_key(chosen[row_a][0]) else 1.0
    low, high = sorted((sign * other.ci_low, sign * other.ci_high))
    return {
        "metric": metric, "row_a": row_a, "row_b": row_b,
        "mean_diff": sign * other.mean_diff, "ci_low": low, "ci_high": high,
        "p_value": other.p_value, "method": other.method, "n_users": other.n_users,
        "n_pairs": other.n_pairs, "n_unpaired": other.n_unpaired, "folds": list(other.folds),
        "n_seeds": other.n_seeds, "note": other.note,
    }
