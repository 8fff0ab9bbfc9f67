"""Evaluation stage: a fitted adapter + train / test rows -> metric values and timings.

Ranking is always over every catalogue item the user has not rated in train, never over
the user's own test items only, and train items are excluded here, not by the adapter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from bench.adapter import Adapter
from bench.data.model import Dataset, Features, Ratings
from bench.errors import DatasetUnavailable, UserError
from bench.evaluation import metrics
from bench.evaluation.ranking import batch_size, recommend, tie_rank


@dataclass(frozen=True)
class MetricSpec:
    """Which metrics to compute.

    ``threshold=None`` counts every test item as relevant.  ``candidates="cold"`` ranks only
    items with no train rows (the cold-item protocol); ``"all"`` ranks every unseen item.
    ``curve`` (a metric name such as ``"rmse"`` or ``"ndcg@10"``) records that metric on a
    validation slice and on test after every iteration of one fit (adapters with
    ``records_curve``); the model is then fitted on train minus the validation slice.
    ``sampled_negatives=N`` adds the sampled protocol's metrics (each relevant item ranked
    among N sampled unseen items; ``sampled_ndcg@K`` / ``sampled_hit_rate@K``) beside the
    full-catalogue ones; ``beyond_accuracy`` adds novelty, intra-list diversity (genres),
    average recommendation popularity and the Gini of exposure (see ``bench.evaluation.metrics``).
    """

    ks: tuple[int, ...] = (10,)
    threshold: float | None = 4.0
    candidates: str = "all"
    curve: str | None = None
    sampled_negatives: int | None = None
    beyond_accuracy: bool = False

    def __post_init__(self) -> None:
        n = self.sampled_negatives
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise UserError(f"sampled_negatives must be a positive integer, got {n!r}")
        if not isinstance(self.beyond_accuracy, bool):
            raise UserError(f"beyond_accuracy must be true or false, got {self.beyond_accuracy!r}")
        if not self.ks or any(int(k) != k or k < 1 for k in self.ks):
            raise UserError(f"metric cut-offs must be positive integers, got {list(self.ks)}")
        if self.candidates not in ("all", "cold"):
            raise UserError(f"metric candidates must be 'all' or 'cold', got {self.candidates!r}")

    @classmethod
    def from_dict(cls, d: dict) -> MetricSpec:
        """From a suite's ``metrics`` table (``threshold = "none"``: every test item
        relevant) or a record's ``metric_options``."""
        unknown = set(d) - {"ks", "threshold", "candidates", "curve", "sampled_negatives",
                            "beyond_accuracy"}
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
        return cls(ks, threshold, d.get("candidates", "all"), d.get("curve"),
                   d.get("sampled_negatives"), d.get("beyond_accuracy", False))

    def to_dict(self) -> dict:
        d = {"ks": list(self.ks), "threshold": self.threshold}
        if self.candidates != "all":  # only when set, so existing trial ids stay unchanged
            d["candidates"] = self.candidates
        if self.curve:
            d["curve"] = self.curve
        if self.sampled_negatives:
            d["sampled_negatives"] = self.sampled_negatives
        if self.beyond_accuracy:
            d["beyond_accuracy"] = True
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
    #: evaluated users without train rows: ``n``, ``share`` and the ranking metrics over
    #: the other (warm) users, ``warm_metrics`` (the record's ``cold_users``)
    cold_users: dict = field(default_factory=dict)
    #: the ranking's evaluated users (internal codes) and their top-K item codes, K the
    #: largest cut-off (``NO_ITEM``-padded); None for a model that does not rank
    top_users: np.ndarray | None = None
    top: np.ndarray | None = None


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
    model: Adapter, train: Ratings, test: Ratings, spec: MetricSpec, out: Evaluation,
    item_features: Features | None = None, seed: int | tuple[int, ...] = 0,
) -> None:
    keys, users = relevant_pairs(test, spec.threshold)
    n_items = train.n_items
    k_max = max(spec.ks)
    seen = train.to_csr(np.ones(len(train), np.float32))
    warm = np.flatnonzero(train.item_counts() > 0) if spec.candidates == "cold" else None
    start = time.perf_counter()
    top = recommend(
        model.score, users, seen, k_max, warm, name=f"{model.name}.score",
        factors=model.factor_scores, shared=model.shared_scores,
    )  # fmt: skip
    out.recommend_seconds = time.perf_counter() - start
    out.top_users, out.top = users, top
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
    if spec.beyond_accuracy:
        beyond_accuracy(top, train, spec.ks, item_features, out)
    if spec.sampled_negatives:
        sampled(model, train, test, keys, users, spec, out, seed)
    counts = train.user_counts()[users]
    out.per_user["train_count"] = counts
    out.cold_users = cold_user_summary(counts, out.per_user)
    k0 = spec.ks[0]
    out.bands = metrics.activity_bands(
        counts, {f"{m}@{k0}": out.per_user[f"{m}@{k0}"] for m in ("ndcg", "recall")}
    )


def cold_user_summary(counts: np.ndarray, per_user: dict[str, np.ndarray]) -> dict:
    """How many evaluated users have no train rows (ranked by whatever a model does for a
    user it never saw, e.g. a popularity fallback), and every per-user metric's mean over
    the warm users, so a table can show what the cold users do to its order."""
    cold = counts == 0
    out: dict = {"n": int(cold.sum()), "share": round(float(cold.mean()), 6) if len(cold) else 0.0}
    if cold.any() and not cold.all():
        warm = {}
        for name, values in per_user.items():
            if name in ("user", "train_count"):
                continue
            v = np.asarray(values, np.float64)[~cold]
            v = v[~np.isnan(v)]
            if len(v):
                warm[name] = round(float(v.mean()), 6)
        out["warm_metrics"] = warm
    return out


def beyond_accuracy(top: np.ndarray, train: Ratings, ks: tuple[int, ...],
                    item_features: Features | None, out: Evaluation) -> None:
    item_counts = train.item_counts()
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        t = top[:, :k]
        per_user[f"novelty@{k}"] = metrics.novelty(t, item_counts, train.n_users)
        per_user[f"arp@{k}"] = metrics.average_popularity(t, item_counts)
        if item_features is not None and item_features.n_features:
            per_user[f"ild@{k}"] = metrics.intra_list_diversity(t, item_features.matrix)
        out.metrics[f"gini@{k}"] = metrics.gini_exposure(t, train.n_items)
    for name, values in per_user.items():
        out.per_user[name] = values
        out.metrics[name], out.intervals[name] = metrics.mean_interval(values)


def sampled(model: Adapter, train: Ratings, test: Ratings, keys: np.ndarray,
            users: np.ndarray, spec: MetricSpec, out: Evaluation,
            seed: int | tuple[int, ...] = 0) -> None:
    """The sampled protocol's metrics; the negatives depend on the fold (``seed``: the
    fold's, ``(split seed, fold)``), not the model."""
    n_items = train.n_items
    interacted = np.unique(np.concatenate([
        train.users.astype(np.int64) * n_items + train.items,
        test.users.astype(np.int64) * n_items + test.items,
    ]))
    pair_users, pair_items = keys // n_items, (keys % n_items).astype(np.int32)
    negatives = metrics.sample_negatives(pair_users, interacted, n_items,
                                         int(spec.sampled_negatives), seed=seed)
    tie = tie_rank(n_items)
    rank = np.empty(len(keys), np.int64)
    step = batch_size(n_items)
    for lo in range(0, len(users), step):
        block = users[lo:lo + step]
        a, b = np.searchsorted(pair_users, [block[0], block[-1] + 1])
        scores = np.nan_to_num(np.asarray(model.score(block), np.float32), nan=-np.inf,
                               posinf=np.finfo(np.float32).max, neginf=-np.inf)
        row = np.searchsorted(block, pair_users[a:b])
        items, negs = pair_items[a:b], negatives[a:b]
        rank[a:b] = metrics.sampled_rank(scores[row, items], scores[row[:, None], negs],
                                         tie[items], tie[negs])
    for k in spec.ks:
        for name, values in metrics.sampled_metrics(rank, pair_users, users, k).items():
            out.per_user[f"{name}@{k}"] = values
            out.metrics[f"{name}@{k}"], out.intervals[f"{name}@{k}"] = (
                metrics.mean_interval(values))


def evaluate(model: Adapter, train: Ratings, test: Ratings, spec: MetricSpec,
             item_features: Features | None = None,
             seed: int | tuple[int, ...] = 0) -> Evaluation:
    """``seed``: the fold's (``(split seed, fold)``), for what a protocol draws per fold
    (the sampled negatives)."""
    out = Evaluation()
    if model.predicts_ratings:
        evaluate_ratings(model, test, out)
    if model.ranks:
        evaluate_ranking(model, train, test, spec, out, item_features, seed)
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
