"""Evaluation stage: a fitted adapter + train / test rows -> metric values and timings.

Ranking is always over every catalogue item the user has not rated in train, never over
the user's own test items only, and train items are excluded here, not by the adapter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from bench import metrics
from bench.adapter import Adapter
from bench.data import Dataset, Ratings
from bench.errors import DatasetUnavailable, UserError
from bench.ranking import recommend


@dataclass(frozen=True)
class MetricSpec:
    """Which metrics to compute.

    ``threshold=None`` counts every test item as relevant.  ``candidates="cold"`` ranks only
    items with no train rows (the cold-item protocol); ``"all"`` ranks every unseen item.
    ``curve`` (a metric name such as ``"rmse"`` or ``"ndcg@10"``) records that metric on a
    validation slice and on test after every iteration of one fit (adapters with
    ``records_curve``); the model is then fitted on train minus the validation slice.
    """

    ks: tuple[int, ...] = (10,)
    threshold: float | None = 4.0
    candidates: str = "all"
    curve: str | None = None

    def __post_init__(self) -> None:
        if not self.ks or any(int(k) != k or k < 1 for k in self.ks):
            raise UserError(f"metric cut-offs must be positive integers, got {list(self.ks)}")
        if self.candidates not in ("all", "cold"):
            raise UserError(f"metric candidates must be 'all' or 'cold', got {self.candidates!r}")

    @classmethod
    def from_dict(cls, d: dict) -> MetricSpec:
        """From a suite's ``metrics`` table (``threshold = "none"``: every test item
        relevant) or a record's ``metric_options``."""
        unknown = set(d) - {"ks", "threshold", "candidates", "curve"}
        if unknown:
            raise UserError(f"unknown metric option(s): {', '.join(sorted(unknown))}")
        ks = d.get("ks", (10,))
        ks = (ks,) if isinstance(ks, int) else tuple(ks)
        threshold = d.get("threshold", 4.0)
        if isinstance(threshold, str):
            if threshold.lower() != "none":
                raise UserError(
                    f"metric threshold must be a number or 'none', got {threshold!r}"
                )
            threshold = None
        return cls(ks, threshold, d.get("candidates", "all"), d.get("curve"))

    def to_dict(self) -> dict:
        d = {"ks": list(self.ks), "threshold": self.threshold}
        if self.candidates != "all":  # only when set, so existing trial ids stay unchanged
            d["candidates"] = self.candidates
        if self.curve:
            d["curve"] = self.curve
        return d


@dataclass
class Evaluation:
    metrics: dict[str, float] = field(default_factory=dict)
    #: half-width of a 95% interval of each metric over users (ranking) or ratings (RMSE/MAE)
    intervals: dict[str, float] = field(default_factory=dict)
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    #: ranking metrics at the first K by quintile of the users' train-set size
    bands: dict[str, list] = field(default_factory=dict)
    predict_seconds: float | None = None
    recommend_seconds: float | None = None


def relevant_pairs(test: Ratings, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted relevant (user, item) keys and the users that have at least one."""
    mask = np.ones(len(test), bool) if threshold is None else test.ratings >= threshold
    keys = np.unique(test.users[mask].astype(np.int64) * test.n_items + test.items[mask])
    return keys, np.unique(keys // test.n_items).astype(np.int32)


def evaluate_ratings(model: Adapter, test: Ratings, out: Evaluation) -> None:
    start = time.perf_counter()
    est = np.asarray(model.predict(test.users, test.items), dtype=np.float64)
    out.predict_seconds = time.perf_counter() - start
    if est.shape != (len(test),):
        raise ValueError(f"{model.name}.predict returned shape {est.shape}, want ({len(test)},)")
    err = est - test.ratings
    out.metrics["rmse"] = metrics.rmse(est, test.ratings)
    out.metrics["mae"] = metrics.mae(est, test.ratings)
    # Delta method: RMSE = sqrt(mean squared error), so its half-width is the MSE's / 2 RMSE.
    _, mse_half = metrics.mean_interval(err * err)
    out.intervals["rmse"] = mse_half / (2 * out.metrics["rmse"]) if out.metrics["rmse"] else 0.0
    out.intervals["mae"] = metrics.mean_interval(np.abs(err))[1]


def evaluate_ranking(
    model: Adapter, train: Ratings, test: Ratings, spec: MetricSpec, out: Evaluation
) -> None:
    keys, users = relevant_pairs(test, spec.threshold)
    n_items = train.n_items
    k_max = max(spec.ks)
    seen = train.to_csr(np.ones(len(train), np.float32))
    warm = np.flatnonzero(train.item_counts() > 0) if spec.candidates == "cold" else None
    start = time.perf_counter()
    top = recommend(
        model.score, users, seen, k_max, warm, name=f"{model.name}.score",
        factors=model.factor_scores,
    )  # fmt: skip
    out.recommend_seconds = time.perf_counter() - start
    hits = metrics.hits_matrix(top, users, keys, n_items)
    n_rel = np.bincount((keys // n_items).astype(np.int64), minlength=train.n_users)[users]
    out.per_user["user"] = users
    for k in spec.ks:
        for name, values in metrics.ranking_metrics(hits, n_rel, k).items():
            out.per_user[f"{name}@{k}"] = values
            mean, half = metrics.mean_interval(values)
            out.metrics[f"{name}@{k}"] = mean
            out.intervals[f"{name}@{k}"] = half
        out.metrics[f"coverage@{k}"] = metrics.coverage(top[:, :k], n_items)
    out.metrics["n_eval_users"] = int(len(users))
    counts = train.user_counts()[users]
    out.per_user["train_count"] = counts
    k0 = spec.ks[0]
    out.bands = metrics.activity_bands(
        counts, {f"{m}@{k0}": out.per_user[f"{m}@{k0}"] for m in ("ndcg", "recall")}
    )


def evaluate(model: Adapter, train: Ratings, test: Ratings, spec: MetricSpec) -> Evaluation:
    out = Evaluation()
    if model.predicts_ratings:
        evaluate_ratings(model, test, out)
    if model.ranks:
        evaluate_ranking(model, train, test, spec, out)
    return out


# ----------------------------------------------------------------------------------------
# Implicit-only data
# ----------------------------------------------------------------------------------------


class NotApplicable(DatasetUnavailable):
    """The trial cannot run on this dataset by design; recorded as ``skipped`` with why."""


def for_implicit_data(
    model: Adapter, spec: MetricSpec, dataset: Dataset, record: dict
) -> MetricSpec:
    """The metric spec of a trial on implicit-only data (``Dataset.implicit``).

    Such data has no ratings: a model that predicts ratings (``predicts_ratings``, also one
    that ranks by its predicted ratings, e.g. ``surprise.SVD``) would only learn that
    every value is 1, so its trial raises ``NotApplicable`` (recorded ``skipped`` with the
    reason).  For ranking models every test interaction is relevant whatever the suite's
    threshold: the returned spec has ``threshold=None`` and ``record["metric_options"]``
    says so, so the leaderboard heading reads "every test item relevant".
    """
    spec = replace(spec, threshold=None)
    record["metric_options"] = spec.to_dict()
    if model.predicts_ratings:
        raise NotApplicable(
            f"implicit-only data: adapter {model.name} predicts ratings "
            f"({dataset.name} has {dataset.value_kind} values, no ratings)"
        )
    return spec
