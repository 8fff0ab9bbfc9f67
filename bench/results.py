"""Stored results as pandas DataFrames: ``bench.results.load(DIR)``.

One row per trial record (the latest record of each trial, as every report reads them):
the record's scalar fields as columns, metrics under their own names (``ndcg@10``,
``rmse``), nested fields flattened with a dot (``params.factors``, ``split.method``,
``env.versions.numpy``, ``interval.ndcg@10`` for the 95% half-widths).  With
``per_user=True``: one row per (record, test user) with the per-user metric values the
store keeps beside the records (``runs/peruser/<trial_id>.npz``).

Every reader of records in this module and in ``bench.site`` goes through ``read_records``.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.execution import store

log = logging.getLogger(__name__)

#: nested record fields flattened into ``<prefix>.<key>`` columns
FLATTENED = {"params": "params", "split": "split", "metric_options": "metric_options",
             "env": "env", "intervals": "interval", "fitted": "fitted"}
#: fields kept out of the frame: bulky or only meaningful to the store
DROPPED = ("metrics", "bands", "spec_params", "checksum", "per_user_sha256")
#: the first columns of ``load``'s frame, before the metrics; the others sorted by name
FRONT = ("trial_id", "suite", "group", "dataset", "split_label", "fold", "adapter", "label",
         "stage", "seed", "threads", "status")
#: identifying columns repeated on every per-user row
PER_USER_KEYS = ("trial_id", "suite", "group", "dataset", "split_label", "fold", "adapter",
                 "label", "stage", "seed", "threads")


def read_records(sources: Path | str | Iterable[Path | str]) -> list[dict]:
    """Every stored record (latest per trial) of results directories or ``.jsonl`` files,
    checked by the store; the one place this module and ``bench.site`` read records."""
    if isinstance(sources, str | Path):
        sources = [sources]
    return store.load([Path(s) for s in sources])


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
    return row


def load(
    sources: Path | str | Iterable[Path | str], per_user: bool = False
) -> pd.DataFrame:
    """Records of results directories / ``.jsonl`` files as a DataFrame (see module doc).

    ``stale`` is True for records computed on earlier contents of their dataset (the
    leaderboard leaves those out).  ``per_user=True`` returns the per-user values instead:
    columns ``PER_USER_KEYS`` + ``user`` (the dataset's internal user index) + one column
    per stored metric; records whose per-user file is absent or damaged are left out with
    a warning (published results ship without them: ``results/*/runs/peruser`` is ignored
    by git).
    """
    if isinstance(sources, str | Path):
        sources = [sources]
    sources = [Path(s) for s in sources]
    records = read_records(sources)
    _, stale = store.split_stale(records)
    stale_ids = {r["trial_id"] for r in stale}
    if per_user:
        return _per_user_frame(records, store.results_dirs(sources))
    frame = pd.DataFrame([record_row(r) for r in records])
    if frame.empty:
        return frame
    frame["stale"] = frame["trial_id"].isin(stale_ids)
    metrics = list(dict.fromkeys(m for r in records for m in r.get("metrics") or {}))
    front = [c for c in (*FRONT, *metrics) if c in frame.columns]
    return frame[front + sorted(c for c in frame.columns if c not in front)]


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
        parts.append(part)
    if missing:
        log.warning("%d record(s) without a readable per-user file left out (%s)",
                    missing, ", ".join(map(str, dirs)))
    if not parts:
        return pd.DataFrame(columns=[*PER_USER_KEYS, "user"])
    return pd.concat(parts, ignore_index=True)
