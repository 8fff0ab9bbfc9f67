"""Admission control: trials that cannot fit the memory or time limit are skipped up front.

Before a run starts, the driver estimates each trial's peak memory and duration from the
data's shape and skips, with the estimate in one line, a trial that would certainly exceed
a limit, instead of letting it die of an out-of-memory kill or burn a whole time-out.

* **Memory**: the harness's own structures (ratings, train/test CSR, per-user metrics:
  ``HARNESS_BYTES_PER_RATING`` per rating) plus the adapter's declared model
  (``Adapter.estimate_bytes(shape)``, e.g. items^2 x 8 bytes for item-item KNN), against
  ``--memory-limit-mb`` or, without one, the memory this host has available.
* **Time**: seconds per train rating of the same adapter with the same parameters in earlier
  records of the results directory (fit + prepare + recommend + predict), scaled linearly to
  this trial's train size.  Ranking grows faster than linearly with the data (users x items),
  so the linear figure is a lower bound and a trial is only skipped when even that exceeds the
  limit.  Records whose train set is more than ``MAX_EXTRAPOLATION`` times smaller are not
  used: at ML-100k size fixed overheads dominate and would inflate the estimate.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

log = logging.getLogger(__name__)

#: bytes per rating the harness itself holds during a trial: the dataset's rating columns
#: (user, item int32; value float32; timestamp int64), the split assignment, train by-user
#: and by-item CSR (indices + values + a copy while building) and the test rows
HARNESS_BYTES_PER_RATING = 64
#: bytes per user / item: id maps, per-user metric arrays, exclusion offsets
HARNESS_BYTES_PER_ENTITY = 128
#: interpreter, numpy / numba / library imports of one worker process, plus the score block
#: ranking works on (``bench.evaluation.ranking.batch_size`` keeps it near 256 MiB)
HARNESS_BASE_BYTES = (400 + 256) * 2**20
#: records on a train set this many times smaller than the trial's are not extrapolated
MAX_EXTRAPOLATION = 50.0
TIME_FIELDS = ("prepare_seconds", "fit_seconds", "recommend_seconds", "predict_seconds")


class DataShape(NamedTuple):
    """The size of a trial's training data, as cost models see it."""

    n_users: int
    n_items: int
    n_ratings: int  # train ratings


@dataclass(frozen=True)
class Estimate:
    memory_bytes: int
    model_bytes: int | None  # the adapter's declared part, None when it declares none
    seconds: float | None  # None: no comparable earlier record
    seconds_basis: str = ""  # which records the time estimate comes from


def harness_bytes(shape: DataShape) -> int:
    return (
        HARNESS_BASE_BYTES
        + HARNESS_BYTES_PER_RATING * shape.n_ratings
        + HARNESS_BYTES_PER_ENTITY * (shape.n_users + shape.n_items)
    )


def train_shape(n_users: int, n_items: int, n_ratings: int, split: dict) -> DataShape:
    """Shape of a fold's train set: the split's train share of the ratings (all users and
    items stay in the catalogue, so their counts are the dataset's)."""
    test_fraction = float(split.get("test_fraction", 0.0) or 0.0)
    if split.get("method") == "kfold":
        test_fraction = 1.0 / max(int(split.get("folds", 5)), 1)
    train = int(math.ceil(n_ratings * (1.0 - test_fraction)))
    return DataShape(n_users, n_items, train)


def seconds_per_rating(
    records: Iterable[dict], adapter: str, params: dict, n_ratings: int
) -> tuple[float, int] | None:
    """Median seconds per train rating of finished test-stage trials of ``adapter`` with
    ``params`` whose train set is comparable in size; and how many records it rests on."""
    rates = []
    for rec in records:
        if (rec.get("status") != "ok" or rec.get("adapter") != adapter
                or rec.get("stage", "test") != "test" or rec.get("params") != params):
            continue
        n_train = rec.get("n_train") or 0
        if n_train <= 0 or n_train * MAX_EXTRAPOLATION < n_ratings:
            continue
        seconds = sum(float(rec.get(f) or 0.0) for f in TIME_FIELDS)
        rates.append(seconds / n_train)
    if not rates:
        return None
    return statistics.median(rates), len(rates)


def estimate(adapter, shape: DataShape, history: Iterable[dict] = ()) -> Estimate:
    """Peak memory and duration of fitting and evaluating ``adapter`` on ``shape``."""
    declared = adapter.estimate_bytes(shape)
    memory = harness_bytes(shape) + (declared or 0)
    params = {k: v for k, v in adapter.get_params().items() if k not in ("seed", "threads")}
    rate = seconds_per_rating(history, adapter.name, params, shape.n_ratings)
    if rate is None:
        return Estimate(memory, declared, None)
    per_rating, n = rate
    return Estimate(memory, declared, per_rating * shape.n_ratings,
                    f"{n} earlier record(s) of the same adapter and parameters")


def refusal(
    est: Estimate, memory_limit_bytes: int | None, time_limit: float, limit_label: str = "the limit"
) -> str | None:
    """The one-line reason a trial with estimate ``est`` cannot run, or None if it can."""
    if memory_limit_bytes is not None and est.memory_bytes > memory_limit_bytes:
        what = ("the model needs " + _gib(est.model_bytes) + " and the harness "
                + _gib(est.memory_bytes - est.model_bytes)) if est.model_bytes else (
            "the harness needs " + _gib(est.memory_bytes))
        return (f"not admitted: estimated peak memory {_gib(est.memory_bytes)} ({what}) exceeds "
                f"{limit_label} of {_gib(memory_limit_bytes)}")
    if est.seconds is not None and est.seconds > time_limit:
        return (f"not admitted: estimated at least {est.seconds:,.0f} s from {est.seconds_basis} "
                f"scaled to this train size, over the time limit of {time_limit:g} s")
    return None


def available_memory_bytes() -> int | None:
    """Memory this host can give a new process now (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_budget(memory_limit_mb: int | None) -> tuple[int | None, str]:
    """The per-trial memory budget and what it is: the limit given, or what this host has
    available now."""
    if memory_limit_mb is not None:
        return int(memory_limit_mb) * 2**20, "the limit (--memory-limit-mb)"
    return available_memory_bytes(), "the memory available on this host"


def _gib(n: int | None) -> str:
    n = n or 0
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"
