"""Metrics as pure functions over arrays.

Rating metrics compare estimates with the test ratings.  Ranking metrics take, for each
evaluated user, the top-K list over every item the user has not seen in train (see
``bench.evaluation.ranking``) and a 0/1 hit matrix; they return one value per user so intervals and
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

Beyond accuracy (``beyond_accuracy`` metric option), per user over the top-K list:

* Novelty@K = mean self-information -log2(p_i) of the recommended items, p_i = share of
  users with item i in train (items with no train rows count as one user)
* ILD@K (intra-list diversity) = mean over pairs of recommended items of 1 - cosine
  similarity of their genre vectors (an item without genres is dissimilar to all)
* ARP@K (average recommendation popularity) = mean train count of the recommended items
* Gini@K (of exposure, one value per trial) = Gini coefficient of how often each catalogue
  item appears in the top-K lists of all users: 0 every item equally, near 1 a few items

Sampled metrics (``sampled_negatives = N``; the "1 relevant + N sampled negatives"
protocol that Krichene & Rendle (KDD 2020) showed can reverse model orders): every relevant
test item is ranked among N distinct items drawn uniformly without replacement from those the
user has in neither train nor test, seeded per fold, the same draws for every model of a
fold; rank = 1 + negatives scored above it (ties in the fixed tie order).
Sampled-HitRate@K = rank <= K; Sampled-NDCG@K = 1 / log2(rank + 1) if rank <= K; per user,
the mean over its relevant items.
"""

from __future__ import annotations

import math

import numpy as np

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Metrics (and recorded costs) where smaller is better; every other metric is larger-better.
LOWER_IS_BETTER = frozenset(
    {"rmse", "mae", "prepare_seconds", "fit_seconds", "predict_seconds", "recommend_seconds",
     # popularity bias: a lower average popularity and a more even exposure are the aims
     "arp", "gini"}
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


def _interval(values: np.ndarray, half_width) -> tuple[float, float]:
    """Mean of the non-NaN ``values`` and ``half_width(values)`` (NaN for under two)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    return float(v.mean()), float(half_width(v))


def mean_interval(values: np.ndarray, z: float = 1.959964) -> tuple[float, float]:
    """Mean and half-width of a normal-approximation 95% interval of the mean."""
    return _interval(values, lambda v: z * v.std(ddof=1) / math.sqrt(v.size))


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of a Student-t 95% interval (for a handful of folds)."""
    from scipy import stats

    return _interval(
        values, lambda v: stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    )


# ----------------------------------------------------------------------------------------
# Beyond accuracy
# ----------------------------------------------------------------------------------------


def novelty(top_items: np.ndarray, item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Per-user mean self-information -log2(share of users with the item in train)."""
    info = -np.log2(np.maximum(item_counts, 1) / max(n_users, 1))
    return _mean_over_list(top_items, info)


def average_popularity(top_items: np.ndarray, item_counts: np.ndarray) -> np.ndarray:
    """Per-user mean train count of the recommended items (ARP)."""
    return _mean_over_list(top_items, np.asarray(item_counts, np.float64))


def _mean_over_list(top_items: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    valid = top_items >= 0
    values = np.where(valid, per_item[np.maximum(top_items, 0)], 0.0)
    n = valid.sum(axis=1)
    return np.where(n > 0, values.sum(axis=1) / np.maximum(n, 1), np.nan)


def intra_list_diversity(top_items: np.ndarray, features, block: int = 4096) -> np.ndarray:
    """Per-user mean pairwise 1 - cosine similarity of the items' feature (genre) vectors.

    ``features`` is an items x features sparse matrix; the lists are handled in blocks of
    users so the (users, K, features) array stays small."""
    import scipy.sparse as sp

    f = sp.csr_matrix(features, dtype=np.float64)
    norms = np.sqrt(np.asarray(f.multiply(f).sum(axis=1)).ravel())
    unit = sp.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-300), 0.0)) @ f
    dense = np.vstack([unit.toarray(), np.zeros((1, f.shape[1]))])  # last row: no item
    n_users, k = top_items.shape
    out = np.full(n_users, np.nan)
    for lo in range(0, n_users, block):
        t = top_items[lo:lo + block]
        v = dense[np.where(t >= 0, t, len(dense) - 1)]  # (b, k, g)
        sim = np.einsum("bkg,bjg->bkj", v, v)
        n = (t >= 0).sum(axis=1)
        pairs = n * (n - 1)
        valid = (t >= 0)[:, :, None] & (t >= 0)[:, None, :]
        off_diag = valid & ~np.eye(k, dtype=bool)[None]
        dist = np.where(off_diag, 1.0 - sim, 0.0).sum(axis=(1, 2))
        out[lo:lo + block] = np.where(pairs > 0, dist / np.maximum(pairs, 1), np.nan)
    return out


def gini_exposure(top_items: np.ndarray, n_items: int) -> float:
    """Gini coefficient of item exposure in the top-K lists over the whole catalogue."""
    rec = top_items[top_items >= 0]
    x = np.sort(np.bincount(rec, minlength=n_items).astype(np.float64))
    if n_items == 0 or x.sum() == 0:
        return math.nan
    i = np.arange(1, n_items + 1)
    return float(((2 * i - n_items - 1) * x).sum() / (n_items * x.sum()))


# ----------------------------------------------------------------------------------------
# Sampled metrics (1 relevant + N negatives)
# ----------------------------------------------------------------------------------------


def sample_negatives(
    pair_users: np.ndarray, interacted_keys: np.ndarray, n_items: int, n_negatives: int,
    seed: int | tuple[int, ...] = 0,
) -> np.ndarray:
    """(pairs, n_negatives) DISTINCT items per pair, drawn uniformly without replacement
    among the items the pair's user has not interacted with (``interacted_keys``: sorted
    user * n_items + item keys of train and test rows), as RecBole and the NCF paper draw
    them.  ``seed`` is the fold's (``(split seed, fold)``): the same draws for every model of
    a fold, other draws in another fold.  Depends only on its arguments, never on a model."""
    rng = np.random.default_rng(seed)
    users = np.asarray(pair_users, np.int64)
    if len(users):
        n_seen = np.diff(np.searchsorted(interacted_keys, np.stack(
            [users * n_items, (users + 1) * n_items])), axis=0)[0]
        if (n_items - n_seen).min() < n_negatives:
            raise ValueError(f"cannot sample {n_negatives} distinct negatives: a user has "
                             f"interacted with all but {(n_items - n_seen).min()} items")
    users = users[:, None]
    draws = rng.integers(0, n_items, size=(len(users), n_negatives))
    rows = np.arange(len(users))[:, None]
    for _ in range(10_000):  # rejection: redraw interacted items and repeats within a row
        keys = users * n_items + draws
        pos = np.minimum(np.searchsorted(interacted_keys, keys), len(interacted_keys) - 1)
        bad = interacted_keys[pos] == keys if len(interacted_keys) else np.zeros_like(keys, bool)
        order = np.argsort(draws, axis=1, kind="stable")  # a repeat: all but its first draw
        ranked = draws[rows, order]
        repeat = np.zeros_like(bad)
        repeat[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
        bad[rows, order] |= repeat
        if not bad.any():
            return draws.astype(np.int32)
        draws[bad] = rng.integers(0, n_items, size=int(bad.sum()))
    raise ValueError("cannot sample negatives: users have interacted with almost every item")


def sampled_rank(pos_scores: np.ndarray, neg_scores: np.ndarray, pos_tie: np.ndarray,
                 neg_tie: np.ndarray) -> np.ndarray:
    """1-based rank of each relevant item among itself and its negatives (ties broken by
    the fixed tie order: a lower tie rank comes first)."""
    p = pos_scores[:, None]
    above = (neg_scores > p) | ((neg_scores == p) & (neg_tie < pos_tie[:, None]))
    return 1 + above.sum(axis=1)


def sampled_metrics(rank: np.ndarray, pair_users: np.ndarray, users: np.ndarray, k: int
                    ) -> dict[str, np.ndarray]:
    """Per-user Sampled-HitRate@k and Sampled-NDCG@k: means over each user's pairs."""
    hit = rank <= k
    gain = np.where(hit, 1.0 / np.log2(rank + 1.0), 0.0)
    idx = np.searchsorted(users, pair_users)
    n = np.bincount(idx, minlength=len(users)).astype(np.float64)
    return {
        "sampled_hit_rate": np.bincount(idx, weights=hit, minlength=len(users)) / n,
        "sampled_ndcg": np.bincount(idx, weights=gain, minlength=len(users)) / n,
    }
