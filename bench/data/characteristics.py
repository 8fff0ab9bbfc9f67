"""Dataset characteristics as plain numbers: users, items, ratings, density, the Gini
coefficient of item popularity and of user activity, degree quantiles, the mean rating.

The Gini coefficient of item popularity is over ratings per item across the whole catalogue
(0 = every item equally rated, 1 = one item has them all).  ``ccdf`` gives the
complementary cumulative distribution of a degree (share of users / items with at least x
ratings).  ``python -m bench describe`` and the leaderboard's "Datasets" section print them
(``bench.reporting.datasets``).
"""

from __future__ import annotations

import numpy as np

from bench.data.model import Dataset

QUANTILES = (0, 10, 25, 50, 75, 90, 99, 100)



def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal; near 1: one holds all)."""
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(c), c.sum()
    if n == 0 or total == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ c / (n * total))



def characteristics(ds: Dataset) -> dict:
    """Plain numbers describing ``ds`` (JSON-able)."""
    r = ds.ratings
    users, items = r.user_counts(), r.item_counts()
    n = len(r)
    return {
        "users": int(ds.n_users),
        "items": int(ds.n_items),
        "ratings": int(n),
        "density": n / max(1, ds.n_users * ds.n_items),
        "gini_items": gini(items),
        "gini_users": gini(users),
        "mean_rating": None if ds.implicit or n == 0 else float(r.ratings.mean()),
        "value_kind": ds.value_kind,
        "user_quantiles": [float(x) for x in np.percentile(users, QUANTILES)],
        "item_quantiles": [float(x) for x in np.percentile(items, QUANTILES)],
    }



def ccdf(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, share of entries with count >= x) at each distinct positive count."""
    c = np.sort(np.asarray(counts)[np.asarray(counts) > 0])
    if len(c) == 0:
        return np.zeros(0), np.zeros(0)
    x, first = np.unique(c, return_index=True)
    return x, (len(c) - first) / len(c)
