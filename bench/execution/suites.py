"""Suites declared as data (``bench/execution/suites/*.toml``) expanded into trial specs.

A suite file holds ``description``, optional ``include = ["other suite", ...]``, optional
``threads = N`` (used when ``--threads`` is not given), optional ``jobs = N`` (most trials at
once on any executor: ``jobs = 1`` for timing-sensitive suites) and any number of
``[[run]]`` tables::

    [[run]]
    datasets = ["ml-100k"]                       # registry names, csv:PATH, synthetic:...
    splits = [{ method = "kfold", n_folds = 5, seed = 0 }]
    adapters = ["surprise.*", "baseline.Bias"]   # fnmatch patterns over available adapters
    exclude = ["surprise.SVDpp"]                 # optional
    metrics = { ks = [10], threshold = 4.0 }     # threshold = "none": every test item relevant
    seeds = [0, 1, 2]                            # optional, model seeds (default [0]);
                                                 # models with ``stochastic = False`` run once
    threads = [1, 2]                             # optional, overrides the suite's threads
    params = { "surprise.SVD" = { n_factors = 50 } }        # optional fixed parameters
    grid = { "recbench.ALS" = { factors = [8, 16, 32] } }   # optional sweeps (product)
    tune = { metric = "ndcg@10", budget = 12 }   # optional: also add "tuned" rows, chosen
                                                 # on a validation split carved from train
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import math
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bench.errors import UserError
from bench.evaluation.evaluate import MetricSpec
from bench.evaluation.tuning import TuneSpec, best, candidates
from bench.execution import registry
from bench.execution.trial import TrialSpec
from bench.splitting.splits import SplitSpec

log = logging.getLogger(__name__)

RUN_KEYS = {
    "datasets",
    "splits",
    "adapters",
    "exclude",
    "metrics",
    "seeds",
    "params",
    "grid",
    "time_limit",
    "tune",
    "requires",
    "threads",
}


#: top-level keys of a suite file
SUITE_KEYS = {"description", "include", "threads", "jobs", "run"}
#: run keys that hold lists, with the type of their items (bool is not an int here)
LIST_KEYS: dict[str, type] = {
    "datasets": str, "splits": dict, "adapters": str, "exclude": str, "seeds": int,
    "requires": str, "threads": int,
}


#: a trial's time limit must leave time to import the libraries (as ``--time-limit``)
MIN_TIME_LIMIT = 1.0


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: str
    runs: tuple[dict, ...]
    threads: int | None = None  # the suite's thread count when --threads is not given
    #: most trials at once on any executor (``jobs = 1``: timing-sensitive suites)
    jobs: int | None = None
    #: the .toml path the suite was given as ("" for a suite known by name)
    file: str = ""


def suite_files() -> dict[str, Path]:
    """Built-in suites plus any in directories listed in ``RECBENCH_SUITES_PATH``."""
    found: dict[str, Path] = {}
    builtin = resources.files("bench.execution") / "suites"
    for entry in builtin.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = Path(str(entry))
    for d in filter(None, os.environ.get("RECBENCH_SUITES_PATH", "").split(os.pathsep)):
        for p in sorted(Path(d).glob("*.toml")):
            found[p.stem] = p
    return found


def parse_file(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"suite file {path}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read suite file {path}: {exc.strerror}") from None


def load(name: str, _seen: tuple[str, ...] = ()) -> Suite:
    """A suite by name, or by path to a ``.toml`` file; includes are flattened."""
    files = suite_files()
    given = name
    if name.endswith(".toml") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"suite file {path} does not exist")
        name = path.stem
    elif name in files:
        path = files[name]
    else:
        raise UserError(f"unknown suite {name!r}; known suites: {', '.join(sorted(files))}")
    if name in _seen:
        raise UserError(f"suite {name!r} includes itself ({' -> '.join(_seen + (name,))})")
    doc = parse_file(path)
    unknown = set(doc) - SUITE_KEYS
    if unknown:
        raise UserError(
            f"suite file {path}: unknown key(s) {', '.join(sorted(unknown))}; a suite has "
            f"{', '.join(sorted(SUITE_KEYS))} (runs are [[run]] tables)"
        )
    if not isinstance(doc.get("run", []), list) or not isinstance(doc.get("include", []), list):
        raise UserError(f"suite file {path}: 'run' must be [[run]] tables and 'include' a list")
    runs: list[dict] = []
    for inc in doc.get("include", []):
        runs.extend(load(inc, _seen + (name,)).runs)
    for i, run in enumerate(doc.get("run", [])):
        unknown = set(run) - RUN_KEYS
        if unknown:
            raise UserError(
                f"suite file {path}: run {i + 1} has unknown key(s) {', '.join(sorted(unknown))}"
            )
        for key in ("datasets", "splits", "adapters"):
            if not run.get(key):
                raise UserError(f"suite file {path}: run {i + 1} needs a non-empty {key!r}")
        for key, kind in LIST_KEYS.items():
            value = run.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
                raise UserError(
                    f"suite file {path}: run {i + 1}: {key!r} must be a list of "
                    f"{'tables' if kind is dict else kind.__name__ + 's'}, "
                    f"e.g. {key} = [{json.dumps(value) if not isinstance(value, list) else '...'}]"
                )
        check_run_options(run, f"suite file {path}: run {i + 1}")
        runs.append({**run, "group": name})  # the suite file the run comes from
    threads = doc.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise UserError(f"suite file {path}: threads must be a positive integer")
    check_threads([threads] if threads is not None else [], f"suite file {path}: threads")
    jobs = doc.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise UserError(f"suite file {path}: jobs must be a positive integer")
    return Suite(name, doc.get("description", ""), str(path), tuple(runs), threads, jobs,
                 file=given if given != name else "")


def check_run_options(run: dict, where: str) -> None:
    """The checks ``run`` applies to ``--time-limit`` and ``--threads``, and seeds that
    are integers (``true`` is not a seed), before anything is read or written."""
    if "time_limit" in run:
        value = run["time_limit"]
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not (math.isfinite(value) and value >= MIN_TIME_LIMIT)):
            raise UserError(f"{where}: time_limit must be a finite number of seconds >= "
                            f"{MIN_TIME_LIMIT:g}, got {value!r}")
    if any(isinstance(v, bool) for v in run.get("seeds", [])):
        raise UserError(f"{where}: 'seeds' must be a list of ints, got {run['seeds']!r}")
    check_threads(run.get("threads", []), f"{where}: threads")
    for key in ("params", "grid"):
        table = run.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise UserError(f"{where}: {key!r} must be a table of adapter name -> table, e.g. "
                            f'{key} = {{ "baseline.Bias" = {{ ... }} }}')


def check_threads(values: list, where: str) -> None:
    cores = os.cpu_count() or 1
    for n in values:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
            raise UserError(f"{where} must be between 1 and the {cores} cores of this "
                            f"machine, got {n!r}")


def check_adapter_names(suite: Suite) -> None:
    """Every adapter a run's ``params`` or ``grid`` names exists (a misspelt name would be
    ignored: the run would silently use the defaults)."""
    for i, run in enumerate(suite.runs):
        for key in ("params", "grid"):
            for name in run.get(key, {}):
                if not registry.known(name):
                    known = ", ".join(registry.available())
                    raise UserError(f"suite {suite.name} ({run.get('group', suite.name)}, run "
                                    f"{i + 1}): {key} names an unknown adapter {name!r}; "
                                    f"known adapters: {known}")


def match_adapters(patterns: list[str], exclude: list[str],
                   available: list[str] | None = None) -> list[str]:
    """The adapters ``patterns`` name (among ``available``, by default the registry's
    adapters of each pattern's library), less ``exclude``."""
    chosen: list[str] = []
    for pat in patterns:
        hits = fnmatch.filter(registry.available(pat) if available is None else available, pat)
        if not hits and not any(c in pat for c in "*?["):
            reason = registry.unavailable_reason(pat)
            if reason is not None:  # e.g. an optional extra (spark, neural) not installed
                log.info("suite adapter %s skipped: unavailable here (%s)", pat, reason)
                continue
            registry.get(pat)  # raises a clear error: an unknown adapter
        chosen.extend(h for h in hits if h not in chosen)
    return [a for a in chosen if not any(fnmatch.fnmatch(a, x) for x in exclude)]


def _combos(suite: Suite, datasets: list[str] | None, adapters: list[str] | None):
    """(run, dataset, split spec, adapter, seed, metric spec) for every combination."""
    for run in suite.runs:
        names = match_adapters(run["adapters"], run.get("exclude", []))
        # e.g. requires = ["scores_cold_items"]: only adapters declaring that capability
        names = [n for n in names if all(
            getattr(registry.get(n), cap, False) for cap in run.get("requires", []))]
        if adapters:
            names = [a for a in names if any(fnmatch.fnmatch(a, p) for p in adapters)]
        metrics = MetricSpec.from_dict(run.get("metrics", {}))
        seeds = run.get("seeds", [0])
        for dataset, split, adapter in itertools.product(
            datasets or run["datasets"], run["splits"], names
        ):
            # a model the seed cannot change runs once: more seeds would be copies
            for seed in seeds if registry.get(adapter).stochastic else seeds[:1]:
                yield run, dataset, SplitSpec.from_dict(split), adapter, seed, metrics


def expand(
    suite: Suite,
    *,
    threads: int,
    datasets: list[str] | None = None,
    adapters: list[str] | None = None,
    time_limit: float | None = None,
    tuned: dict[tuple, dict] | None = None,
) -> list[TrialSpec]:
    """Trial specs of ``suite``, optionally restricted to some datasets / adapter patterns.

    Without ``tuned``: the default-parameter test trials plus, for runs with ``tune``, the
    validation trials of every candidate setting.  With ``tuned`` (best parameters per
    (dataset, split, adapter, seed), from ``tuned_params``): the ``tuned`` test trials.
    """
    specs: list[TrialSpec] = []
    seen: set[str] = set()

    def add(spec: TrialSpec) -> None:
        if spec.trial_id not in seen:
            seen.add(spec.trial_id)
            specs.append(spec)

    for run, dataset, split, adapter, seed, metrics in _combos(suite, datasets, adapters):
        # A run may sweep thread counts (the scaling ablation); otherwise the suite's.
        for n_threads in run.get("threads", [threads]):
            common = dict(
                dataset=dataset,
                split=split,
                adapter=adapter,
                seed=seed,
                threads=n_threads,
                metrics=metrics,
                suite=suite.name,
                suite_file=suite.file,
                group=run.get("group", suite.name),
                time_limit=time_limit or run.get("time_limit", 900.0),
            )
            if tuned is not None:
                # Nested: each fold's tuned row uses the setting chosen on a validation slice
                # of that fold's own train rows (another fold's choice saw this fold's test).
                for fold in split.folds:
                    key = tune_key(dataset, split.to_dict(), adapter, seed, fold)
                    if "tune" in run and key in tuned:
                        add(TrialSpec(fold=fold, params=tuned[key], label="tuned", **common))
                continue
            for params in param_sets(run, adapter):
                for fold in split.folds:
                    add(TrialSpec(fold=fold, params=params, **common))
        if tuned is None and "tune" in run:
            tune = TuneSpec.from_dict(run["tune"])
            fixed = dict(run.get("params", {}).get(adapter, {}))
            for params in candidates(registry.get(adapter), fixed, tune):
                for fold in split.folds:
                    add(TrialSpec(fold=fold, params=params, label="validation",
                                  stage="validation", **common))  # fmt: skip
    return specs


def tune_key(dataset: str, split: dict, adapter: str, seed: int, fold: int) -> tuple:
    """What one tuning choice is made for: a fold of a split (each fold tunes on its own)."""
    return (dataset, json.dumps(split, sort_keys=True), adapter, seed, fold)


def tuned_params(suite: Suite, records: dict[str, dict]) -> tuple[dict[tuple, dict], list[dict]]:
    """Best validation parameters per (dataset, split, adapter, seed, fold) and a summary."""
    metric_of = {}
    for run, dataset, split, adapter, seed, _ in _combos(suite, None, None):
        if "tune" in run:
            for fold in split.folds:
                key = tune_key(dataset, split.to_dict(), adapter, seed, fold)
                metric_of[key] = TuneSpec.from_dict(run["tune"]).metric
    groups: dict[tuple, list[dict]] = {}
    for rec in records.values():
        if rec.get("stage") == "validation":
            key = tune_key(rec["dataset"], rec["split"], rec["adapter"], rec["seed"], rec["fold"])
            groups.setdefault(key, []).append(rec)
    chosen: dict[tuple, dict] = {}
    summary: list[dict] = []
    for key, recs in groups.items():
        if key not in metric_of:
            continue
        winner = best(recs, metric_of[key])
        if winner is None:
            continue
        chosen[key] = winner["params"]
        summary.append({
            "dataset": key[0],
            "split": json.loads(key[1]),
            "adapter": key[2],
            "seed": key[3],
            "fold": key[4],
            "metric": metric_of[key],
            "validation_score": winner["metrics"][metric_of[key]],
            "params": winner["params"],
            "candidates": len(recs),
        })
    return chosen, summary


def param_sets(run: dict, adapter: str) -> list[dict]:
    fixed = dict(run.get("params", {}).get(adapter, {}))
    grid = run.get("grid", {}).get(adapter, {})
    if not grid:
        return [fixed]
    keys = sorted(grid)
    return [{**fixed, **dict(zip(keys, combo, strict=True))} for combo in itertools.product(
        *(grid[k] for k in keys)
    )]
