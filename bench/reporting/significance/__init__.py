"""Significance marks: every model of a leaderboard table tested against the table's best on
per-user values paired by (fold, user): bootstrap, Wilcoxon, Holm; see ``tables``."""

from bench.reporting.significance.bootstrap import (
    bootstrap_mean_diff,
    bootstrap_seeds_mean_diff,
)
from bench.reporting.significance.paired_tests import (
    ALPHA,
    METHODS,
    N_RESAMPLES,
    holm,
    paired_test,
)
from bench.reporting.significance.pairing import per_user_values
from bench.reporting.significance.tables import (
    MARKER,
    MISSING_POLICIES,
    Marks,
    SignificanceResult,
    best_row,
    legend,
    mark_all,
    mark_table,
    marker,
)

__all__ = [
    "ALPHA",
    "MARKER",
    "METHODS",
    "MISSING_POLICIES",
    "N_RESAMPLES",
    "Marks",
    "SignificanceResult",
    "best_row",
    "bootstrap_mean_diff",
    "bootstrap_seeds_mean_diff",
    "holm",
    "legend",
    "mark_all",
    "mark_table",
    "marker",
    "paired_test",
    "per_user_values",
]
