"""One trial: a plain spec in, one record out.

``run_trial`` loads the dataset (from the local cache), takes the stored split, fits the
adapter, evaluates it and returns a JSON-serialisable record plus per-user metric arrays.
It shares no state with other trials, so any executor (this package's worker processes,
Dask, Ray) can run it; the only shared thing is the results store (splits, per-user files).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.adapter import Adapter
from bench.data.colstore import StoreCorrupt
from bench.data.model import Dataset, Ratings, TrainSet
from bench.errors import DatasetUnavailable, StoreFault, UserError
from bench.evaluation.evaluate import Evaluation, MetricSpec, evaluate, for_implicit_data
from bench.execution import datastore, progress, registry, store, threads, topk
from bench.execution.envinfo import environment, thread_settings
from bench.execution.hostload import HostLoad
from bench.splitting.splits import Fold, SplitSpec, fold_rows, load_or_assign, validation_rows

#: Version of the record layout; bumped only for incompatible changes (fields are only added).
SCHEMA_VERSION = 1
#: Fields added to version 1, counted (``schema_minor``; absent = 0): 1 adds
#: ``side_information``, ``defaults_by`` / ``recbench_defaults``, ``scored_by_harness``,
#: ``host_load`` and, for ranking records, ``cold_users``; 2 adds ``topk_file`` /
#: ``topk_sha256`` / ``topk_k`` (the trial's stored top-K lists, ``bench.execution.topk``)
#: and ``in_memory_adapter`` (an adapter class handed to ``bench.run`` in memory); 3 adds
#: ``data_delivery`` (how the dataset and split arrived: store location or bytes
#: scattered, seconds to load them) and ``evaluate_seconds`` (predict, recommend and
#: metrics together); 4 adds ``env.cluster`` (the Spark cluster a trial ran on: master,
#: executors, cores, memory, Spark version; absent for a trial run in its own process).
SCHEMA_MINOR = 4
STATUSES = ("ok", "failed", "timeout", "skipped")


class NothingToScore(Exception):
    """The protocol leaves this fold nothing to evaluate: the trial is skipped, not failed."""


@dataclass(frozen=True)
class TrialSpec:
    """Everything that defines a trial; ``trial_id`` hashes the fields that change results.

    Split and metric options are typed (``SplitSpec``, ``MetricSpec``, validated when built);
    they become plain dicts only where a spec crosses a process boundary (``to_dict`` /
    ``from_dict``) and in the record.
    """

    dataset: str
    split: SplitSpec
    fold: int
    adapter: str
    params: dict = field(default_factory=dict)
    seed: int = 0
    threads: int = 1
    metrics: MetricSpec = field(default_factory=MetricSpec)
    suite: str = ""
    #: the suite file the trial's run comes from (``coldstart`` inside ``all``): one
    #: leaderboard section each; part of the identity so each section is complete
    group: str = ""
    label: str = "defaults"  # "defaults", "tuned", or "validation" (a tuning candidate)
    time_limit: float = 900.0
    #: "test": fit on the fold's train rows, score its test rows; "validation": fit on train
    #: minus a validation slice carved from train, score that slice (test rows unread).
    stage: str = "test"
    #: the .toml path the suite was given as, for the Reproduce line (not part of the id)
    suite_file: str = ""
    #: where a cluster-capable adapter's work runs (``bench.execution.spark_master``):
    #: ``{"spark_master": "spark://host:7077", ...}``; not part of the id (where a trial
    #: runs, not what it is)
    cluster: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.split, SplitSpec) or not isinstance(self.metrics, MetricSpec):
            raise TypeError(
                "TrialSpec takes a SplitSpec and a MetricSpec (plain dicts: TrialSpec.from_dict), "
                f"got {type(self.split).__name__} and {type(self.metrics).__name__}"
            )

    @property
    def trial_id(self) -> str:
        identity = {
            "dataset": self.dataset,
            "split": self.split.to_dict(),
            "fold": self.fold,
            "adapter": self.adapter,
            "params": self.params,
            "seed": self.seed,
            "threads": self.threads,
            "metrics": self.metrics.to_dict(),
        }
        # Added only when not the default, so ids of plain test trials never change.
        if self.stage != "test":
            identity["stage"] = self.stage
        if self.label != "defaults":
            identity["label"] = self.label
        if self.group:
            identity["group"] = self.group
        blob = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """Plain JSON-able data, for handing the spec to another process."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**out, "split": self.split.to_dict(), "metrics": self.metrics.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TrialSpec:
        return cls(**{
            **d,
            "split": SplitSpec.from_dict(d["split"]),
            "metrics": MetricSpec.from_dict(d.get("metrics", {})),
        })


def build_adapter(
    name: str, params: dict, seed: int, threads: int, cluster: dict | None = None
) -> Adapter:
    """Instantiate ``name`` with ``params`` (placed on ``cluster``, ``TrialSpec.cluster``);
    unknown or ill-typed parameters are a UserError."""
    cls = registry.get(name)
    known = set(cls.param_names()) - {"seed", "threads"}
    unknown = set(params) - known
    if unknown:
        raise UserError(
            f"unknown parameter(s) {', '.join(sorted(unknown))} for adapter {name}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
    defaults = cls.default_params()
    for key, value in params.items():
        default = defaults.get(key)
        if default is not None and not _same_kind(default, value):
            raise UserError(
                f"parameter {key}={value!r} of adapter {name} has the wrong type: "
                f"expected {type(default).__name__}"
            )
    model = cls(**params, seed=seed, threads=threads)
    if cluster:
        model.use_cluster(cluster)
    return model


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


class PeakMemory:
    """Peak resident memory of this process between ``reset`` and ``read`` (Linux).

    Writing 5 to /proc/self/clear_refs resets the kernel's high-water mark, so a worker that
    runs many trials still reports each trial's own peak.  Elsewhere: lifetime peak.
    """

    def reset(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    def read_mb(self) -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_record(spec: TrialSpec) -> dict:
    rec = {
        "schema_version": SCHEMA_VERSION,
        "schema_minor": SCHEMA_MINOR,
        "trial_id": spec.trial_id,
        "suite": spec.suite,
        "group": spec.group or spec.suite,
        "dataset": spec.dataset,
        "split": spec.split.to_dict(),
        "split_label": spec.split.label,
        "fold": spec.fold,
        "adapter": spec.adapter,
        "label": spec.label,
        "stage": spec.stage,
        "params": spec.params,
        #: the parameters the suite asked for (``params`` adds every default): what
        #: ``bench compare`` matches on, so a changed default is compared, not "new"
        "spec_params": spec.params,
        "seed": spec.seed,
        "threads": spec.threads,
        "metric_options": spec.metrics.to_dict(),
        "status": None,
        "error": None,
        "metrics": {},
        "prepare_seconds": None,
        "fit_seconds": None,
        "predict_seconds": None,
        "recommend_seconds": None,
        "peak_rss_mb": None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if spec.suite_file:
        rec["suite_file"] = spec.suite_file
    return rec


def finish(record: dict, status: str, error: str | None = None) -> dict:
    record["status"] = status
    record["error"] = error
    return record


#: executors: dataset name -> the driver's copy of it (a dataset cache file) in this process
_shipped: dict[str, Path] = {}


def use_shipped(name: str, cache_file: Path) -> None:
    """Load ``name`` from ``cache_file``, the copy its driver shipped
    (``bench.execution.executors``), instead of this host's own cache or files."""
    _shipped[name] = Path(cache_file)


def load_dataset(name: str) -> Dataset:
    """The dataset from the data store when the executor gave its location
    (``bench.execution.datastore``), else loaded here (``_load_dataset``)."""
    if datastore.location(name) is not None:
        return datastore.load(name)
    return _load_dataset(name)


@lru_cache(maxsize=2)
def _load_dataset(name: str) -> Dataset:
    """Datasets are immutable, so a worker keeps the last two it loaded: a suite runs many
    trials per dataset and synthetic data is regenerated, not cached on disk."""
    from bench.data import cache, datasets

    if name in _shipped:
        return cache.read_cache(_shipped[name], name, {})
    return datasets.load(name)


def run_trial(
    spec: TrialSpec, results_dir: Path | None, top_k: dict[str, np.ndarray] | None = None
) -> tuple[dict, dict[str, np.ndarray]]:
    """Run one trial; never raises for a failure of the adapter (it is recorded instead).

    Returns the record and the per-user metric arrays; a ``top_k`` dict given is filled
    with the trial's top-K lists (``bench.execution.topk.arrays``) when the model ranks.
    """
    record = base_record(spec)
    start = time.perf_counter()
    per_user: dict[str, np.ndarray] = {}
    model: Adapter | None = None
    try:
        # The adapter's module loads its library first, so the count reaches its pools too.
        registry.get(spec.adapter)
        threads.apply(spec.threads)
        model = build_adapter(spec.adapter, spec.params, spec.seed, spec.threads, spec.cluster)
        record["params"] = {
            k: v for k, v in model.get_params().items() if k not in ("seed", "threads")
        }
        # the same spec gives the same numbers, except Hogwild SGD on several threads
        record["reproducible"] = not (model.parallel_sgd and spec.threads > 1)
        # what the leaderboard marks, from the trial itself, not from the installed adapters
        record["side_information"] = model.reads_side_information()
        record["scored_by_harness"] = bool(model.scored_by_harness)
        record["defaults_by"] = model.defaults_by
        record["recbench_defaults"] = list(model.recbench_defaults)
        record["env"] = environment(model.library or None)
        in_memory = registry.inline_class(spec.adapter)
        if in_memory is not None:  # handed to bench.run in memory: no module reproduces it
            record["in_memory_adapter"] = f"{in_memory.__module__}.{in_memory.__qualname__}"
        if spec.cluster:
            record["env"]["cluster"] = model.cluster_info()
        progress.report("loading the dataset", force=True)
        t_load = time.perf_counter()
        dataset = load_dataset(spec.dataset)
        t_split = time.perf_counter()
        record["dataset_fingerprint"] = dataset.fingerprint()[:16]
        metric_spec = spec.metrics
        if dataset.implicit:  # implicit-only data: rating models skipped, every test row relevant
            metric_spec = for_implicit_data(model, metric_spec, dataset, record)
        progress.report("splitting", force=True)
        fold = stage_rows(spec, dataset, results_dir)
        record["split_fingerprint"] = fold.fingerprint
        t_take = time.perf_counter()
        train, test = fold_ratings(spec, dataset, fold)
        record["data_delivery"] = datastore.delivery(
            spec.dataset, t_split - t_load, t_take - t_split, time.perf_counter() - t_take)
        record["n_train"], record["n_test"] = len(train), len(test)
        if len(test) == 0:
            what = "validation" if spec.stage == "validation" else "test"
            raise NothingToScore(
                f"split {spec.split.label} leaves no {what} rows in fold {spec.fold} of "
                f"{spec.dataset} (e.g. users with too few ratings to hold any out)"
            )
        fit_rows = fold.train_rows
        cold = ColdUsers.of(spec.split, model, fold)
        if cold is not None:
            record["cold_path"] = cold.path
            fit_rows = cold.fit_rows(fit_rows)
        curve = Curve.of(spec, model, metric_spec, dataset, fit_rows, train, test)
        if curve is not None:
            fit_rows = curve.fit_rows
            record["n_train"] = len(fit_rows)
        train_set = TrainSet(
            # the same rows as ``train`` unless cold users' revealed rows are left out:
            # then no second copy of the train ratings is made
            train if fit_rows is fold.train_rows else dataset.ratings.take(fit_rows),
            dataset.rating_scale,
            dataset.item_features,
            dataset.user_features,
        )
        # the time limit starts here (progress.CLOCK_STARTS)
        progress.report(f"{progress.CLOCK_STARTS} (untimed: compilation, imports)", force=True)
        warmup = warm_up(spec, train_set, test, metric_spec)
        if warmup is not None:
            record["warmup_seconds"] = round(warmup, 6)
        # libraries loaded since (dataset, warm-up, lazy imports) get the count as well
        threads.apply(spec.threads)
        peak = PeakMemory()
        peak.reset()
        load = HostLoad().start()  # other processes' CPU use beside the timed stages
        progress.report(f"fitting on {len(train_set.ratings):,} ratings", force=True)
        fit_end = fit_timed(model, train_set, curve, record)
        if cold is not None:
            cold.fold_in(model, dataset, record, since=fit_end)
        # Exclusion uses every train row the user has, revealed ones included.
        progress.report("evaluating", force=True)
        t_eval = time.perf_counter()
        result = evaluate(model, train, test, metric_spec, dataset.item_features,
                          seed=(spec.split.seed, spec.fold))
        record["evaluate_seconds"] = round(time.perf_counter() - t_eval, 6)
        record["peak_rss_mb"] = round(peak.read_mb(), 1)
        record["env"]["threads"] = thread_settings()  # the pools in force for fit and ranking
        record["host_load"] = load.stop()
        record["side_information"] = model.reads_side_information()  # as fitted
        record_evaluation(record, result)
        per_user = result.per_user
        if top_k is not None and result.top is not None:
            top_k.update(topk.arrays(result.top_users, result.top, dataset.user_ids,
                                     dataset.item_ids))
        finish(record, "ok")
    except (StoreFault, StoreCorrupt):
        raise  # the environment's fault, not the model's: nothing is recorded
    except (DatasetUnavailable, NothingToScore) as exc:
        finish(record, "skipped", str(exc))
    except UserError as exc:
        finish(record, "failed", str(exc))
    except Exception as exc:  # an adapter's failure is a result, not a crash of the suite
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        finish(record, "failed", f"{type(exc).__name__}: {exc} | {' / '.join(tb[-3:])}")
    if spec.cluster and model is not None and "env" in record:
        record["env"]["cluster"] = model.cluster_info()  # as the fit found it, or failed
    record["duration_seconds"] = round(time.perf_counter() - start, 3)
    return record, per_user


def fit_timed(model: Adapter, train_set: TrainSet, curve: Curve | None, record: dict) -> float:
    """Prepare and fit ``model``, recording the seconds of each (a curve's scoring is not
    fit time) and what the fit reports; returns the moment the fit ended."""
    t0 = time.perf_counter()
    prepared = model.bind(train_set)
    t1 = time.perf_counter()
    if curve is not None:
        model.fit_prepared(prepared, on_iteration=curve)
    else:
        model.fit_prepared(prepared)
    t2 = time.perf_counter()
    fitted = model.fitted_info()
    if fitted:
        record["fitted"] = fitted
    record["prepare_seconds"] = round(t1 - t0, 6)
    record["fit_seconds"] = round(t2 - t1 - (curve.seconds if curve else 0.0), 6)
    if curve is not None:
        record["curve"] = curve.as_dict()
    return t2


def record_evaluation(record: dict, result: Evaluation) -> None:
    record["predict_seconds"] = _round(result.predict_seconds)
    record["recommend_seconds"] = _round(result.recommend_seconds)
    record["metrics"] = {k: _round(v) for k, v in result.metrics.items()}
    record["intervals"] = {k: _round(v) for k, v in result.intervals.items()}
    if result.bands:
        record["bands"] = result.bands
    if result.cold_users:
        record["cold_users"] = result.cold_users


def stage_rows(spec: TrialSpec, dataset: Dataset, results_dir: Path | None) -> Fold:
    """The rows of the trial's stage: the fold's train / test rows (``test``), or train minus
    a validation slice carved from it / that slice (``validation``); the split is stored
    under ``results_dir``."""
    fold = None
    if datastore.location(spec.dataset) is not None:  # the driver stored the split
        fold = datastore.fold(spec.dataset, dataset, spec.split, spec.fold)
    split_store = None if results_dir is None else Path(results_dir) / "splits"
    fold = fold or fold_rows(load_or_assign(dataset.ratings, spec.split, split_store), spec.fold)
    if spec.stage == "validation":
        fold = validation_rows(dataset.ratings, fold.train_rows, spec.split)
    return fold


def fold_ratings(spec: TrialSpec, dataset: Dataset, fold: Fold) -> tuple[Ratings, Ratings]:
    """The fold's train and test ratings: mapped read-only from the store's files of this
    fold when the driver wrote them (test stage), else gathered from the dataset's rows."""
    if spec.stage != "validation":
        stored = datastore.fold_ratings(spec.dataset, dataset, spec.split, spec.fold)
        if stored is not None:
            return stored
    return dataset.ratings.take(fold.train_rows), dataset.ratings.take(fold.test_rows)


class ColdUsers:
    """The cold-user protocol: a model that folds new users in is fitted without their
    revealed ratings and then given them; any other model is refitted with them in train.
    ``path`` says which (the record's ``cold_path``)."""

    def __init__(self, folds_in: bool, revealed_rows: np.ndarray) -> None:
        self.folds_in = folds_in
        self.revealed_rows = revealed_rows

    @classmethod
    def of(cls, split: SplitSpec, model: Adapter, fold: Fold) -> ColdUsers | None:
        """The protocol for a ``cold_users`` split, else None."""
        if split.method != "cold_users":
            return None
        return cls(model.folds_in_users, fold.revealed_rows)

    @property
    def path(self) -> str:
        return "fold_in" if self.folds_in else "refit"

    def fit_rows(self, train_rows: np.ndarray) -> np.ndarray:
        if not self.folds_in:
            return train_rows
        return np.setdiff1d(train_rows, self.revealed_rows)

    def fold_in(self, model: Adapter, dataset: Dataset, record: dict, since: float) -> None:
        """Give the fitted model the revealed ratings (fold-in path); its seconds since the
        fit ended go to ``fold_in_seconds``."""
        if self.folds_in and len(self.revealed_rows):
            model.fold_in_users(dataset.ratings.take(self.revealed_rows))
            record["fold_in_seconds"] = round(time.perf_counter() - since, 6)


#: adapters whose one-time costs (JIT compilation, lazy imports) this worker has paid
_WARMED: set[str] = set()
#: rows of train (and of test) the warm-up fit sees: enough for every code path to run
WARMUP_ROWS = 2000


def warm_up(spec: TrialSpec, train_set: TrainSet, test, metric_spec: MetricSpec) -> float | None:
    """Fit and evaluate a throw-away copy of the adapter on a slice of the train rows, once
    per adapter per worker, so numba's compilation (or loading its cache) and lazy imports
    are not timed as the first trial's fit or ranking.  Returns its seconds (None when this
    worker had already warmed the adapter).  A failure here is ignored: the real fit
    reports it."""
    if spec.adapter in _WARMED:
        return None
    if spec.cluster and registry.get(spec.adapter).runs_on_cluster:
        return None  # each fit starts its own cluster application: nothing to warm here
    _WARMED.add(spec.adapter)
    start = time.perf_counter()
    try:
        model = build_adapter(spec.adapter, spec.params, spec.seed, spec.threads, spec.cluster)
        rows = np.arange(min(WARMUP_ROWS, len(train_set.ratings)))
        small = replace(train_set, ratings=train_set.ratings.take(rows))
        model.fit(small)
        evaluate(model, small.ratings, test.take(np.arange(min(WARMUP_ROWS, len(test)))),
                 metric_spec)  # fmt: skip
    except Exception:  # noqa: BLE001 - the timed fit below meets and records any real error
        pass
    return time.perf_counter() - start


class Curve:
    """Convergence curve of one fit: the model is fitted on train minus a validation slice,
    and after each iteration (``__call__``) the curve metric is scored on that slice and on
    the test rows; that scoring time is not counted as fit (``seconds``)."""

    def __init__(
        self, model: Adapter, spec: MetricSpec, fit_rows, train_rows, validation, test
    ) -> None:
        self.model, self.metric = model, spec.curve
        self.spec = replace(spec, curve=None)
        # Items to exclude: validation ranks over what the model saw, test over all of
        # the user's train rows (the validation slice included).
        self.sets = (("validation", fit_rows, validation), ("test", train_rows, test))
        self.points: dict[str, list] = {"iteration": [], "validation": [], "test": []}
        self.seconds = 0.0
        self.fit_rows = np.empty(0, dtype=np.int64)  # row indices of the fit (``of``)

    @classmethod
    def of(
        cls, spec: TrialSpec, model: Adapter, metric_spec: MetricSpec, dataset: Dataset,
        fit_rows: np.ndarray, train: Ratings, test: Ratings,
    ) -> Curve | None:
        """The curve a ``metrics.curve`` option asks for (None without one); its
        ``fit_rows`` are ``fit_rows`` minus the validation slice."""
        if not metric_spec.curve:
            return None
        if not model.records_curve:
            raise UserError(f"adapter {spec.adapter} cannot record a convergence curve")
        inner = validation_rows(dataset.ratings, fit_rows, spec.split)
        curve = cls(
            model, metric_spec, dataset.ratings.take(inner.train_rows), train,
            dataset.ratings.take(inner.test_rows), test,
        )  # fmt: skip
        curve.fit_rows = inner.train_rows
        return curve

    def __call__(self, iteration: int) -> None:
        start = time.perf_counter()
        self.points["iteration"].append(iteration)
        for name, seen, rows in self.sets:
            value = evaluate(self.model, seen, rows, self.spec).metrics.get(self.metric)
            if value is None:
                raise UserError(f"{self.model.name} does not produce curve metric {self.metric}")
            self.points[name].append(round(float(value), 6))
        self.seconds += time.perf_counter() - start

    def as_dict(self) -> dict:
        return {"metric": self.metric, **self.points}


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return None if math.isnan(value) else round(float(value), 6)


def save_per_user(
    results_dir: Path, trial_id: str, per_user: dict[str, np.ndarray]
) -> tuple[str | None, str | None]:
    """Write per-user metric arrays next to the records: (path relative to the store, its
    sha256), which the record keeps so a damaged file is found and the trial re-run."""
    if not per_user:
        return None, None
    rel = Path("runs") / "peruser" / f"{trial_id}.npz"
    path = Path(results_dir) / rel
    store.write_atomic(path, lambda fh: np.savez_compressed(fh, **per_user))
    return str(rel), store.sha256_file(path)
