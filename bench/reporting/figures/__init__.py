"""Figures drawn from stored records only (never from live models).

``render_all(records, results_dir)`` writes PNGs under ``<results>/plots/`` and returns
their paths.  Every figure is one small module with a draw function taking plain records;
``SCOPES`` is the one registry ``render_all`` walks: per kind of record group (split sweep,
metric definitions, leaderboard table), the figures drawn for it as (selector, draw
function, file suffix).  Adding a figure is a module and one registry entry.  Matplotlib is
used through ``Figure`` + the Agg canvas directly (no pyplot, no global backend switch), so
importing this package changes nothing for a caller's own plotting.

Figures (modules ``quality``, ``bars``, ``activity``, ``ablation``, ``split_sweep``,
``threads``, ``definitions``, ``convergence``) and the record fields they read (records
are the JSON records of ``bench.execution.trial``; only ``status == "ok"`` and ``stage == "test"``
records are drawn; a "row" is a leaderboard row, ``record.row_key``, averaged over folds
as in the leaderboard):

* ``quality_vs_time``: one point per row, x = mean ``fit_seconds`` (log axis), y = mean
  ``metrics[metric]``; the Pareto front (nothing else is both faster and better) is drawn
  as a staircase and its points ringed.  Labels are placed so they do not overlap.
* ``metric_bars``: one bar per row, mean ``metrics[metric]`` with its 95% interval; with
  per-user files, bars not significantly different from the best (``reporting.significance``)
  are hatched.
* ``activity_bands``: ``record["bands"] = {"edges": [int, ...], "n_users": [int, ...],
  "<metric>": [float, ...]}`` (``bench.evaluation.metrics.activity_bands``): the metric per band of
  users' train-set size, one line per row (the best ``top`` rows).
* ``ablation``: ``metrics[metric]`` against a swept ``params[param]``, one line per
  adapter; ``param`` may map adapters to their own name for one quantity (``factors`` /
  ``n_factors`` / ``rank``).  ``sweeps`` finds them: rows of one table whose ``params``
  differ in exactly one parameter (what a suite's ``grid`` produces).
* ``split_sweep``: ``metrics[metric]`` against a split field swept across tables that are
  otherwise equal: ``split.n_reveal`` of ``cold_users`` splits (file suffix ``cold-start``; the
  record's ``cold_path``, fold-in or refit, is named) or ``split.train_fraction``
  (learning curve; absent = 1.0).
* ``thread_scaling``: fit time and speed-up against ``threads`` for rows that differ only
  in their thread count.
* ``metric_definition``: rank of each row under every (relevance threshold, cut-off K)
  definition of ``ndcg@K`` found for one dataset and split (``metric_options`` tables).
* ``convergence``: ``record["curve"] = {"iteration": [int, ...], "validation": [float,
  ...], "test": [float, ...], "metric": "rmse"}`` (``metric`` optional, either series
  optional); one colour per row, test solid, validation dashed, one line per fold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.execution.record import TableKey, by_table, table_key
from bench.reporting.figures.ablation import ablation, sweeps
from bench.reporting.figures.activity import activity_bands
from bench.reporting.figures.bars import Mark, metric_bars
from bench.reporting.figures.common import (
    ResultsDir,
    first_ranking_metric,
    rating_metric,
    row_names,
    table_slug,
)
from bench.reporting.figures.convergence import convergence
from bench.reporting.figures.definitions import metric_definition, metric_definition_groups
from bench.reporting.figures.layout import place_labels
from bench.reporting.figures.quality import pareto_front, quality_vs_time
from bench.reporting.figures.split_sweep import SPLIT_SWEEPS, split_sweep, split_sweep_groups
from bench.reporting.figures.threads import thread_scaling

__all__ = [
    "FIGURES", "SCOPES", "ablation", "activity_bands", "convergence", "metric_bars",
    "metric_definition", "pareto_front", "place_labels", "quality_vs_time", "render_all",
    "row_names", "split_sweep", "sweeps", "table_slug", "thread_scaling",
]

#: What a selector yields per figure to draw: the draw function's positional arguments
#: after the records, its keyword arguments, and the fields that fill the file suffix.
Drawing = tuple[tuple, dict[str, Any], dict[str, str]]


@dataclass(frozen=True)
class FigureKind:
    """One kind of figure: ``select(records, mark)`` yields a ``Drawing`` per figure of a
    record group (none when the records do not support it), ``draw(records, *args,
    path=..., **options)`` draws one (None when there is nothing to draw), and the PNG is
    named ``<group slug>_<suffix>.png`` with ``suffix`` formatted by the drawing's fields."""

    select: Callable[[list[dict], Mark | None], Iterable[Drawing]]
    draw: Callable[..., Path | None]
    suffix: str


@dataclass(frozen=True)
class Scope:
    """A kind of record group and the figures drawn for each: ``groups(records)`` yields
    (file-name slug, the group's records)."""

    groups: Callable[[list[dict]], Iterator[tuple[str, list[dict]]]]
    figures: tuple[FigureKind, ...]


def _name(metric: str) -> str:
    return metric.replace("@", "")


def _quality_metrics(recs: list[dict], _mark: Mark | None) -> Iterator[Drawing]:
    for metric in (rating_metric(recs), first_ranking_metric(recs)):
        if metric:
            yield (metric,), {}, {"metric": _name(metric)}


def _ranking(recs: list[dict], _mark: Mark | None) -> Iterator[Drawing]:
    if ndcg := first_ranking_metric(recs):
        yield (ndcg,), {}, {"metric": _name(ndcg)}


def _ranking_marked(recs: list[dict], mark: Mark | None) -> Iterator[Drawing]:
    if ndcg := first_ranking_metric(recs):
        yield (ndcg,), {"mark": mark}, {"metric": _name(ndcg)}


def _sweeps(recs: list[dict], _mark: Mark | None) -> Iterator[Drawing]:
    main_metric = first_ranking_metric(recs) or rating_metric(recs)
    if main_metric:
        for mapping in sweeps(recs):
            params = "-".join(sorted(set(mapping.values())))
            yield (mapping, main_metric), {}, {"metric": _name(main_metric), "params": params}


def _always(_recs: list[dict], _mark: Mark | None) -> Iterator[Drawing]:
    yield (), {}, {}


def _sweep_metric(field: str) -> Callable[[list[dict], Mark | None], Iterator[Drawing]]:
    def select(recs: list[dict], _mark: Mark | None) -> Iterator[Drawing]:
        if metric := first_ranking_metric(recs) or rating_metric(recs):
            yield (field, metric), {}, {}

    return select


def _split_sweeps(field: str) -> Callable[[list[dict]], Iterator[tuple[str, list[dict]]]]:
    def groups(records: list[dict]) -> Iterator[tuple[str, list[dict]]]:
        for recs in split_sweep_groups(records, field).values():
            label = re.sub(r",\s*(n=\d+|\d+% of train)", "", recs[0].get("split_label", ""))
            yield table_slug({**recs[0], "split_label": label}), recs

    return groups


def _definition_groups(records: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    for recs in metric_definition_groups(records).values():
        yield table_slug(recs[0], relevance=False), recs


def _swept_tables(records: list[dict]) -> set[TableKey]:
    return {
        table_key(r)
        for field in SPLIT_SWEEPS
        for recs in split_sweep_groups(records, field).values()
        for r in recs
    }


def _tables(records: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    """Leaderboard tables, except points of a split sweep: one curve covers those, and
    per-point tables would repeat it."""
    swept = _swept_tables(records)
    for key, recs in sorted(by_table(records).items()):
        if key not in swept:
            yield table_slug(recs[0]), recs


#: The figures of one leaderboard table, in drawing order.
FIGURES: tuple[FigureKind, ...] = (
    FigureKind(_quality_metrics, quality_vs_time, "{metric}-vs-fit"),
    FigureKind(_ranking_marked, metric_bars, "{metric}-bars"),
    FigureKind(_ranking, activity_bands, "{metric}-by-activity"),
    FigureKind(_sweeps, ablation, "{metric}-vs-{params}"),
    FigureKind(_always, thread_scaling, "threads"),
    FigureKind(_always, convergence, "convergence"),
)

#: Every figure ``render_all`` draws: split sweeps first, then metric definitions, then
#: each table's ``FIGURES``.
SCOPES: tuple[Scope, ...] = (
    *(
        Scope(_split_sweeps(field), (FigureKind(_sweep_metric(field), split_sweep, suffix),))
        for field, (_, _, suffix) in SPLIT_SWEEPS.items()
    ),
    Scope(_definition_groups, (FigureKind(_always, metric_definition,
                                          "ranks-by-metric-definition"),)),
    Scope(_tables, FIGURES),
)


def render_all(
    records: list[dict],
    results_dir: ResultsDir,
    out_dir: Path | None = None,
    mark: Mark | None = None,
) -> list[Path]:
    """Every figure the stored records support (``SCOPES``); returns the PNG paths written.

    ``out_dir`` defaults to ``<first results dir>/plots``.  ``mark(records, metric)``
    gives the significance results of one table's rows (see
    ``bench.reporting.significance.Marks``): bar charts hatch the rows not significantly
    different from the best.  Tables that are points of a split sweep (cold-start n,
    learning-curve train share) get the sweep's curve instead of per-table figures.
    """
    dirs = [Path(results_dir)] if isinstance(results_dir, str | Path) else [
        Path(d) for d in results_dir]
    out = Path(out_dir) if out_dir is not None else dirs[0] / "plots"
    written: list[Path | None] = []
    for scope in SCOPES:
        for slug, recs in scope.groups(records):
            for kind in scope.figures:
                for args, options, fields in kind.select(recs, mark):
                    path = out / f"{slug}_{kind.suffix.format(**fields)}.png"
                    written.append(kind.draw(recs, *args, path=path, **options))
    return [p for p in written if p is not None]
