"""Names and phrases shared by the leaderboard and the figures (no record handling)."""

from __future__ import annotations

from collections.abc import Iterable

from bench.evaluation.metrics import lower_is_better

RATING_COLUMNS = ("rmse", "mae")
RANKING_NAMES = {
    "ndcg": "NDCG",
    "precision": "P",
    "recall": "R",
    "map": "MAP",
    "hit_rate": "Hit",
    "mrr": "MRR",
    "coverage": "Cov",
    # protocol ablations (metric options sampled_negatives, beyond_accuracy)
    "sampled_ndcg": "sNDCG",
    "sampled_hit_rate": "sHit",
    "novelty": "Nov",
    "ild": "ILD",
    "arp": "ARP",
    "gini": "Gini",
}
#: Appended to the metric cell of a model not significantly different from the best
#: (``bench.reporting.significance``).
SIGNIFICANCE_MARK = " †"


def header_name(col: str) -> str:
    """A leaderboard column heading: ``ndcg@10`` -> ``NDCG@10``, ``rmse`` -> ``RMSE``."""
    if "@" in col:
        m, k = col.split("@")
        return f"{RANKING_NAMES[m]}@{k}"
    return col.upper()


def metric_label(metric: str) -> str:
    """``ndcg@10`` -> ``NDCG@10``; ``rmse`` -> ``RMSE``; an unknown name upper-cased."""
    if "@" in metric and metric.split("@")[0] in RANKING_NAMES:
        return header_name(metric)
    return metric.upper()


def sort_column_text(columns: Iterable[str | None]) -> str:
    """``the sort column (...)`` naming the columns the tables are actually ranked by
    (``columns``: each table's sort column): RMSE in rating tables, NDCG@K in the others."""
    cols = sorted({c for c in columns if c}, key=lambda c: (c.split("@")[0], len(c), c))
    rating = " / ".join(metric_label(c) for c in cols if c in RATING_COLUMNS)
    ranking = " / ".join(metric_label(c) for c in cols if c not in RATING_COLUMNS)
    named = f"{rating} in rating tables, {ranking} in the others" if rating and ranking \
        else rating or ranking or "none"
    return f"the sort column ({named})"


def relevance_text(options: dict) -> str:
    thr = options.get("threshold")
    return "every test item relevant" if thr is None else f"relevant = test rating >= {thr:g}"


def direction(metric: str) -> str:
    return "lower is better" if lower_is_better(metric) else "higher is better"
