"""The tests a comparison can use (two-sided, H0: mean per-user difference = 0): the paired
bootstrap or Wilcoxon's signed-rank test, and Holm's correction across a table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.reporting.significance.bootstrap import bootstrap_mean_diff

ALPHA = 0.05
N_RESAMPLES = 2000
METHODS = ("bootstrap", "wilcoxon")


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def _wilcoxon(diff_sum: np.ndarray, count: np.ndarray) -> tuple[float, float, float, float]:
    from scipy import stats

    have = count > 0
    total = count[have].sum()
    if total == 0:
        return math.nan, math.nan, math.nan, math.nan
    observed = float(diff_sum[have].sum() / total)
    per_user = diff_sum[have] / count[have]
    if not np.any(per_user != 0):
        p = 1.0
    else:
        p = float(stats.wilcoxon(per_user, zero_method="wilcox").pvalue)
    # Normal interval of the pooled mean over users (ratio-estimator standard error).
    resid = diff_sum[have] - observed * count[have]
    k = have.sum()
    se = math.sqrt(k / max(k - 1, 1) * float((resid**2).sum())) / total
    return observed, p, observed - 1.959964 * se, observed + 1.959964 * se


def paired_test(
    diff_sum: np.ndarray,
    count: np.ndarray,
    method: str = "bootstrap",
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Uncorrected paired tests of several comparisons (columns) at once.

    ``diff_sum[u, j]`` is the sum of comparison j's paired differences for user u and
    ``count[u, j]`` their number (0 when user u is not in comparison j).  Returns per
    comparison: mean difference, two-sided p-value, and a 95% interval of the mean
    difference (bootstrap percentiles, or normal for ``wilcoxon``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    diff_sum = np.asarray(diff_sum, np.float64)
    count = np.asarray(count, np.float64)
    if method == "bootstrap":
        return bootstrap_mean_diff(diff_sum, count, n_resamples, seed)
    cols = [_wilcoxon(diff_sum[:, j], count[:, j]) for j in range(diff_sum.shape[1])]
    if not cols:
        empty = np.empty(0)
        return empty, empty, empty, empty
    observed, p, low, high = (np.array(c) for c in zip(*cols, strict=True))
    return observed, p, low, high
