"""The one module that reads trial records: a typed view, the keys readers group by, and
the filters they share.

A record is a JSON object on one line of ``<results>/runs/<suite>.jsonl`` (written by
``bench.execution.trial``, stored by ``bench.execution.store``; the JSON format is the
public interface and is not changed here).  Readers (``bench.reporting``: leaderboard,
significance, compare, figures) do not re-key records themselves:

* ``table_key(rec)`` -> ``TableKey``: one leaderboard table (suite group, dataset, split,
  metric options);
* ``row_key(rec)`` -> ``RowKey``: one row of a table (adapter, label, parameters, threads,
  cold path), pooling a model's records over folds and seeds;
* ``is_ok_test(rec)``: the records tables and figures are drawn from (``status == "ok"``,
  stage ``test``); ``is_test_stage(rec)``: stage ``test`` whatever the status;
* ``aggregate(recs, col)``: a row's mean and 95% half-width of a metric or a time.

``Record`` is a frozen view over one record dict that fills every default once
(``group`` = ``group`` or ``suite``, ``stage`` = ``test``, ``label`` = ``defaults``, ...);
``records(results_dir)`` yields one per stored trial, for loaders that build tables of
records (e.g. a pandas frame).  The key functions accept plain dicts too, as readers get
them from ``store.load``.  Keys are NamedTuples: they sort, hash and compare as the plain
tuples they replace, so table and row order is unchanged.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bench.evaluation.metrics import t_interval
from bench.execution import store

#: The parameters field of a tuned row's key: nested tuning chooses per fold, and one row
#: pools every fold's tuned trial whatever each chose.
TUNED_PER_FOLD = json.dumps("per fold")


class TableKey(NamedTuple):
    """One leaderboard table: records scored on the same rows under the same metric rules."""

    group: str
    dataset: str
    split: str  # the split spec as sorted-key JSON
    metric_options: str  # the metric options as sorted-key JSON

    @property
    def split_spec(self) -> dict:
        return json.loads(self.split)


class RowKey(NamedTuple):
    """One row of a table: a model setting, pooled over folds and model seeds."""

    adapter: str
    label: str
    params: str  # sorted-key JSON, or ``TUNED_PER_FOLD`` for a nested tuned row
    threads: int | None
    cold_path: str

    @property
    def param_dict(self) -> dict:
        """The parameters of the row; a nested tuned row has none of its own (``{}``)."""
        return {} if self.params == TUNED_PER_FOLD else json.loads(self.params)

    @property
    def library(self) -> str:
        return self.adapter.split(".", 1)[0]


@dataclass(frozen=True)
class Record:
    """A read-only view of one stored record with every default filled once."""

    trial_id: str
    adapter: str
    dataset: str
    split: Mapping[str, Any]
    fold: int
    status: str
    metrics: Mapping[str, float | None]
    suite: str = ""
    group: str = ""
    stage: str = "test"
    label: str = "defaults"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: Any = None
    threads: int | None = None
    cold_path: str = ""
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    split_label: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, rec: Mapping[str, Any]) -> Record:
        return cls(
            trial_id=rec["trial_id"],
            adapter=rec["adapter"],
            dataset=rec["dataset"],
            split=rec["split"],
            fold=rec["fold"],
            status=rec["status"],
            metrics=rec.get("metrics") or {},
            suite=rec.get("suite", ""),
            group=group_of(rec),
            stage=rec.get("stage", "test"),
            label=rec.get("label", "defaults"),
            params=rec.get("params") or {},
            seed=rec.get("seed"),
            threads=rec.get("threads"),
            cold_path=rec.get("cold_path", ""),
            metric_options=rec.get("metric_options", {}),
            split_label=rec.get("split_label", ""),
            raw=rec,
        )

    def get(self, name: str, default: Any = None) -> Any:
        """Any other stored field (``fit_seconds``, ``env``, ``curve``, ...)."""
        return self.raw.get(name, default)

    def is_ok_test(self) -> bool:
        return is_ok_test(self.raw)

    @property
    def table_key(self) -> TableKey:
        return table_key(self.raw)

    @property
    def row_key(self) -> RowKey:
        return row_key(self.raw)


#: other processes using at most this many cores on average (``host_load.other_cpus``, see
#: ``bench.execution.hostload``) while a trial ran: a quiet host, whose timings are a result
QUIET_OTHER_CPUS = 0.25


def host_quiet(rec: Mapping) -> bool | None:
    """Whether a record's ``host_load`` says the host was quiet (None: not recorded)."""
    load = rec.get("host_load") or {}
    if load.get("other_cpus") is None:
        return None
    return float(load["other_cpus"]) <= QUIET_OTHER_CPUS


def group_of(rec: Mapping) -> str:
    """The leaderboard section of a record: its suite's group, else the suite."""
    return rec.get("group") or rec.get("suite") or ""


def is_test_stage(rec: Mapping) -> bool:
    """Scored on test rows (tuning candidates are stage ``validation``)."""
    return rec.get("stage", "test") == "test"


def is_ok_test(rec: Mapping) -> bool:
    """What tables and figures are drawn from: a finished trial scored on test rows."""
    return rec.get("status") == "ok" and is_test_stage(rec)


def table_key(rec: Mapping) -> TableKey:
    return TableKey(
        rec.get("group") or rec.get("suite", ""),
        rec["dataset"],
        json.dumps(rec["split"], sort_keys=True),
        json.dumps(rec.get("metric_options", {}), sort_keys=True),
    )


def row_key(rec: Mapping) -> RowKey:
    label = rec.get("label", "defaults")
    return RowKey(
        rec["adapter"],
        label,
        TUNED_PER_FOLD if label == "tuned" else json.dumps(rec["params"], sort_keys=True),
        rec.get("threads"),
        rec.get("cold_path", ""),
    )


def match_key(rec: Mapping) -> str:
    """What defines a trial across runs (``bench compare``): not thread count or machine."""
    return json.dumps(
        [
            rec["dataset"],
            rec["split"],
            rec["fold"],
            rec["adapter"],
            rec.get("spec_params", rec["params"]),
            rec.get("seed"),
            rec.get("metric_options"),
            rec.get("label", "defaults"),
            rec.get("stage", "test"),
        ],
        sort_keys=True,
    )


def by_row(records: Iterable[dict]) -> dict[RowKey, list[dict]]:
    rows: dict[RowKey, list[dict]] = defaultdict(list)
    for r in records:
        rows[row_key(r)].append(r)
    return rows


def by_table(records: Iterable[dict]) -> dict[TableKey, list[dict]]:
    """Records of each table, ok and stage test only."""
    tables: dict[TableKey, list[dict]] = defaultdict(list)
    for r in records:
        if is_ok_test(r):
            tables[table_key(r)].append(r)
    return tables


def n_seeds(recs: list[dict]) -> int:
    """Distinct model seeds among a row's records (a record without one counts as one)."""
    return len({r.get("seed") for r in recs})


def aggregate(recs: list[dict], col: str, timing: bool = False) -> tuple[float, float]:
    """Mean and 95% half-width of ``col`` (a metric, or a time when ``timing``) over a
    row's records: over seeds when the records come from several seeds (Student-t over
    the per-seed means), else Student-t over folds, else the interval over users / ratings
    stored in the one record.  Times get no interval."""
    values = [r.get(col) if timing else (r.get("metrics") or {}).get(col) for r in recs]
    present = [(r.get("seed"), v) for r, v in zip(recs, values, strict=True) if v is not None]
    vals = np.array([v for _, v in present], dtype=np.float64)
    if vals.size == 0:
        return math.nan, math.nan
    if timing:
        return float(vals.mean()), math.nan
    by_seed: dict = defaultdict(list)
    for s, v in present:
        by_seed[s].append(v)
    if len(by_seed) > 1:  # the interval is over the per-seed means (each over its folds)
        _, half = t_interval(np.array([np.mean(v) for v in by_seed.values()]))
        return float(vals.mean()), half
    if vals.size == 1:
        half = (recs[0].get("intervals") or {}).get(col)
        return float(vals[0]), math.nan if half is None else float(half)
    return t_interval(vals)


def records(results_dir: Path | str) -> Iterator[Record]:
    """A ``Record`` per stored trial of a results dir (or .jsonl file): the latest record
    of each trial, checked as ``store.load`` checks them."""
    for rec in store.load([Path(results_dir)]):
        yield Record.of(rec)
