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
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench import progress, registry, splits, store
from bench.adapter import Adapter
from bench.data import Dataset, TrainSet
from bench.envinfo import environment
from bench.errors import DatasetUnavailable, StoreFault, UserError
from bench.evaluate import MetricSpec, evaluate, for_implicit_data

#: Version of the record layout; bumped only for incompatible changes (fields are only added).
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "timeout", "skipped")


class NothingToScore(Exception):
    """The protocol leaves this fold nothing to evaluate: the trial is skipped, not failed."""


@dataclass(frozen=True)
class TrialSpec:
    """Everything that defines a trial; ``trial_id`` hashes the fields that change results."""

    dataset: str
    split: dict
    fold: int
    adapter: str
    params: dict = field(default_factory=dict)
    seed: int = 0
    threads: int = 1
    metrics: dict = field(default_factory=dict)
    suite: str = ""
    #: the suite file the trial's run comes from (``coldstart`` inside ``all``): one
    #: leaderboard section each; part of the identity so each section is complete
    group: str = ""
    label: str = "defaults"  # "defaults", "tuned", or "validation" (a tuning candidate)
    time_limit: float = 900.0
    #: "test": fit on the fold's train rows, score its test rows; "validation": fit on train
    #: minus a validation slice carved from train, score that slice (test rows unread).
    stage: str = "test"

    @property
    def trial_id(self) -> str:
        identity = {
            "dataset": self.dataset,
            "split": splits.SplitSpec.from_dict(self.split).to_dict(),
            "fold": self.fold,
            "adapter": self.adapter,
            "params": self.params,
            "seed": self.seed,
            "threads": self.threads,
            "metrics": MetricSpec.from_dict(self.metrics).to_dict(),
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
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrialSpec:
        return cls(**d)


def build_adapter(name: str, params: dict, seed: int, threads: int) -> Adapter:
    """Instantiate ``name`` with ``params``; unknown or ill-typed parameters are a UserError."""
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
    return cls(**params, seed=seed, threads=threads)


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def set_threads(n: int) -> None:
    """Pin BLAS / OpenMP pools and numba to ``n`` threads for this process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    try:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:
        pass


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
    return {
        "schema_version": SCHEMA_VERSION,
        "trial_id": spec.trial_id,
        "suite": spec.suite,
        "group": spec.group or spec.suite,
        "dataset": spec.dataset,
        "split": splits.SplitSpec.from_dict(spec.split).to_dict(),
        "split_label": splits.SplitSpec.from_dict(spec.split).label,
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
        "metric_options": MetricSpec.from_dict(spec.metrics).to_dict(),
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


def finish(record: dict, status: str, error: str | None = None) -> dict:
    record["status"] = status
    record["error"] = error
    return record


@lru_cache(maxsize=2)
def load_dataset(name: str) -> Dataset:
    """Datasets are immutable, so a worker keeps the last two it loaded: a suite runs many
    trials per dataset and synthetic data is regenerated, not cached on disk."""
    from bench import datasets

    return datasets.load(name)


def run_trial(spec: TrialSpec, results_dir: Path | None) -> tuple[dict, dict[str, np.ndarray]]:
    """Run one trial; never raises for a failure of the adapter (it is recorded instead)."""
    record = base_record(spec)
    start = time.perf_counter()
    per_user: dict[str, np.ndarray] = {}
    try:
        set_threads(spec.threads)
        split_spec = splits.SplitSpec.from_dict(spec.split)
        metric_spec = MetricSpec.from_dict(spec.metrics)
        model = build_adapter(spec.adapter, spec.params, spec.seed, spec.threads)
        record["params"] = {
            k: v for k, v in model.get_params().items() if k not in ("seed", "threads")
        }
        # the same spec gives the same numbers, except Hogwild SGD on several threads
        record["reproducible"] = not (model.parallel_sgd and spec.threads > 1)
        record["env"] = environment(model.library or None)
        progress.report("loading the dataset", force=True)
        dataset = load_dataset(spec.dataset)
        record["dataset_fingerprint"] = dataset.fingerprint()[:16]
        if dataset.implicit:  # implicit-only data: rating models skipped, every test row relevant
            metric_spec = for_implicit_data(model, metric_spec, dataset, record)
        store = None if results_dir is None else Path(results_dir) / "splits"
        progress.report("splitting", force=True)
        fold_of_row = splits.load_or_assign(dataset.ratings, split_spec, store)
        fold = splits.fold_rows(fold_of_row, spec.fold)
        if spec.stage == "validation":
            fold = splits.validation_rows(dataset.ratings, fold.train_rows, split_spec)
        record["split_fingerprint"] = fold.fingerprint
        train = dataset.ratings.take(fold.train_rows)
        test = dataset.ratings.take(fold.test_rows)
        record["n_train"], record["n_test"] = len(train), len(test)
        if len(test) == 0:
            what = "validation" if spec.stage == "validation" else "test"
            raise NothingToScore(
                f"split {split_spec.label} leaves no {what} rows in fold {spec.fold} of "
                f"{spec.dataset} (e.g. users with too few ratings to hold any out)"
            )
        # Cold users: a model that folds new users in is fitted without their revealed
        # ratings and then given them; any other model is refitted with them in train.
        fit_rows = fold.train_rows
        if split_spec.method == "cold_users":
            record["cold_path"] = "fold_in" if model.folds_in_users else "refit"
            if model.folds_in_users:
                fit_rows = np.setdiff1d(fold.train_rows, fold.revealed_rows)
        train_set = TrainSet(
            # the same rows as ``train`` unless cold users' revealed rows are left out:
            # then no second copy of the train ratings is made
            train if fit_rows is fold.train_rows else dataset.ratings.take(fit_rows),
            dataset.rating_scale,
            dataset.item_features,
            dataset.user_features,
        )
        curve = None
        if metric_spec.curve:
            # Convergence: fit on train minus a validation slice, and after every
            # iteration score both the slice and the test rows (time not counted as fit).
            if not model.records_curve:
                raise UserError(f"adapter {spec.adapter} cannot record a convergence curve")
            inner = splits.validation_rows(dataset.ratings, fit_rows, split_spec)
            train_set = replace(train_set, ratings=dataset.ratings.take(inner.train_rows))
            record["n_train"] = len(inner.train_rows)
            curve = Curve(
                model, metric_spec, train_set.ratings, train,
                dataset.ratings.take(inner.test_rows), test,
            )  # fmt: skip
        progress.report("warming up (untimed: compilation, imports)", force=True)
        warmup = warm_up(spec, train_set, test, metric_spec)
        if warmup is not None:
            record["warmup_seconds"] = round(warmup, 6)
        peak = PeakMemory()
        peak.reset()
        progress.report(f"fitting on {len(train_set.ratings):,} ratings", force=True)
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
        if record.get("cold_path") == "fold_in" and len(fold.revealed_rows):
            model.fold_in_users(dataset.ratings.take(fold.revealed_rows))
            record["fold_in_seconds"] = round(time.perf_counter() - t2, 6)
        # Exclusion uses every train row the user has, revealed ones included.
        progress.report("evaluating", force=True)
        result = evaluate(model, train, test, metric_spec, dataset.item_features)
        record["peak_rss_mb"] = round(peak.read_mb(), 1)
        record["predict_seconds"] = _round(result.predict_seconds)
        record["recommend_seconds"] = _round(result.recommend_seconds)
        record["metrics"] = {k: _round(v) for k, v in result.metrics.items()}
        record["intervals"] = {k: _round(v) for k, v in result.intervals.items()}
        if result.bands:
            record["bands"] = result.bands
        per_user = result.per_user
        finish(record, "ok")
    except StoreFault:
        raise  # the environment's fault, not the model's: nothing is recorded
    except (DatasetUnavailable, NothingToScore) as exc:
        finish(record, "skipped", str(exc))
    except UserError as exc:
        finish(record, "failed", str(exc))
    except Exception as exc:  # an adapter's failure is a result, not a crash of the suite
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        finish(record, "failed", f"{type(exc).__name__}: {exc} | {' / '.join(tb[-3:])}")
    record["duration_seconds"] = round(time.perf_counter() - start, 3)
    return record, per_user


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
    _WARMED.add(spec.adapter)
    start = time.perf_counter()
    try:
        model = build_adapter(spec.adapter, spec.params, spec.seed, spec.threads)
        rows = np.arange(min(WARMUP_ROWS, len(train_set.ratings)))
        small = replace(train_set, ratings=train_set.ratings.take(rows))
        model.fit(small)
        evaluate(model, small.ratings, test.take(np.arange(min(WARMUP_ROWS, len(test)))),
                 metric_spec)  # fmt: skip
    except Exception:  # noqa: BLE001 - the timed fit below meets and records any real error
        pass
    return time.perf_counter() - start


class Curve:
    """Called after each iteration of one fit: the curve metric on validation and test."""

    def __init__(
        self, model: Adapter, spec: MetricSpec, fit_rows, train_rows, validation, test
    ) -> None:
        self.model, self.metric = model, spec.curve
        self.spec = MetricSpec(spec.ks, spec.threshold, spec.candidates)
        # Items to exclude: validation ranks over what the model saw, test over all of
        # the user's train rows (the validation slice included).
        self.sets = (("validation", fit_rows, validation), ("test", train_rows, test))
        self.points: dict[str, list] = {"iteration": [], "validation": [], "test": []}
        self.seconds = 0.0

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
