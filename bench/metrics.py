"""Metrics as pure functions over arrays.

Rating metrics compare estimates with the test ratings.  Ranking metrics take, for each
evaluated user, the top-K list over every item the user has not seen in train (see
``bench.ranking``) and a 0/1 hit matrix; they return one value per user so intervals and
paired tests can be computed.  Definitions (binary relevance, ``n_rel`` relevant test items,
``hit[j]`` = the item at rank j (0-based) is relevant):

* Precision@K = hits in top K / K
* Recall@K = hits in top K / n_rel
* NDCG@K = sum_j hit[j] / log2(j + 2), divided by the same sum for an ideal list of
  min(n_rel, K) hits
* MAP@K = sum_j hit[j] * precision@(j+1) / min(n_rel, K)
* HitRate@K = 1 if any hit in top K
* MRR@K = 1 / (rank of the first hit), 0 if none in top K
* Coverage@K = distinct items recommended in any top-K list / catalogue size
"""

from __future__ import annotations

import math

import numpy as np

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Metrics (and recorded costs) where smaller is better; every other metric is larger-better.
LOWER_IS_BETTER = frozenset(
    {"rmse", "mae", "prepare_seconds", "fit_seconds", "predict_seconds", "recommend_seconds"}
)


def lower_is_better(metric: str) -> bool:
    """Direction of ``metric`` (``ndcg@10`` is judged by its family, ``ndcg``)."""
    return metric.split("@")[0] in LOWER_IS_BETTER


def rmse(estimates: np.ndarray, truth: np.ndarray) -> float:
    err = np.asarray(estimates, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(err * err))) if err.size else math.nan


def mae(estimates: np.ndarray, truth: np.ndarray) -> float:
    err = np.asarray(estimates, np.float64) - np.asarray(truth, np.float64)
    return float(np.mean(np.abs(err))) if err.size else math.nan


def hits_matrix(
    top_items: np.ndarray, users: np.ndarray, relevant_keys: np.ndarray, n_items: int
) -> np.ndarray:
    """hits[r, j] = item ``top_items[r, j]`` is relevant for ``users[r]``.

    ``relevant_keys`` are sorted ``user * n_items + item`` keys of the relevant test pairs.
    Padding entries (negative item codes) are never hits.
    """
    keys = users.astype(np.int64)[:, None] * n_items + top_items
    pos = np.searchsorted(relevant_keys, keys)
    pos = np.minimum(pos, len(relevant_keys) - 1)
    found = relevant_keys[pos] == keys if len(relevant_keys) else np.zeros(keys.shape, bool)
    return found & (top_items >= 0)


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user ranking metrics at cut-off ``k`` from a (users x >=k) hit matrix."""
    h = hits[:, :k].astype(np.float64)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    n_hits = h.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k).astype(np.int64) - 1]
    ranks = np.arange(1, k + 1)
    precision_at = np.cumsum(h, axis=1) / ranks
    any_hit = n_hits > 0
    first = np.argmax(h > 0, axis=1)
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": (h @ discounts) / ideal,
        "map": (precision_at * h).sum(axis=1) / np.minimum(n_rel, k),
        "hit_rate": any_hit.astype(np.float64),
        "mrr": np.where(any_hit, 1.0 / (first + 1), 0.0),
    }


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top-K list."""
    rec = top_items[top_items >= 0]
    return float(np.unique(rec).size / n_items) if n_items else math.nan


def activity_bands(
    counts: np.ndarray, values: dict[str, np.ndarray], n_bands: int = 5
) -> dict[str, list]:
    """Mean of each per-user metric within quantile bands of the users' train-set size.

    Bands are quantiles of ``counts`` over the evaluated users (quintiles by default);
    ``edges`` are the band boundaries in ratings, so the long tail of light users is visible.
    """
    counts = np.asarray(counts)
    if counts.size == 0:
        return {"edges": [], "n_users": []}
    edges = np.unique(np.quantile(counts, np.linspace(0, 1, n_bands + 1)).round())
    band = np.clip(np.searchsorted(edges, counts, side="right") - 1, 0, max(len(edges) - 2, 0))
    n = np.bincount(band, minlength=max(len(edges) - 1, 1))
    out: dict[str, list] = {"edges": edges.astype(int).tolist(), "n_users": n.tolist()}
    for name, v in values.items():
        sums = np.bincount(band, weights=v, minlength=len(n))
        out[name] = [round(float(x), 6) for x in sums / np.maximum(n, 1)]
    return out


def mean_interval(values: np.ndarray, z: float = 1.959964) -> tuple[float, float]:
    """Mean and half-width of a normal-approximation 95% interval of the mean."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    return float(v.mean()), float(z * v.std(ddof=1) / math.sqrt(v.size))


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of a Student-t 95% interval (for a handful of folds)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)
