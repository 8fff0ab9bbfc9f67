"""Paired cluster bootstrap of mean differences, many comparisons at once: users are the
resampling unit (the same user draws for every comparison of a table); with several model
seeds on a side, a two-level bootstrap that draws seeds, then users."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

#: Bootstrap counts matrices are built in blocks of about this many cells (memory bound).
_BLOCK_CELLS = 4_000_000


def _seed_weights(rng: np.random.Generator, n_resamples: int, n_seeds: int) -> np.ndarray:
    """(n_resamples, n_seeds) weights: how often each seed is drawn (with replacement, as
    many draws as seeds), divided by the number of seeds."""
    draws = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    flat = (np.arange(n_resamples)[:, None] * n_seeds + draws).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_seeds).reshape(n_resamples, n_seeds)
    return counts / n_seeds


def _p_and_interval(
    stats: np.ndarray, observed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred two-sided bootstrap p-value and 2.5% / 97.5% percentiles per column."""
    extreme = np.abs(stats - observed) >= np.abs(observed)
    valid = ~np.isnan(stats)
    p = (1.0 + (extreme & valid).sum(axis=0)) / (1.0 + valid.sum(axis=0))
    p = np.where(np.isnan(observed), np.nan, p)
    with np.errstate(all="ignore"):
        low, high = np.nanpercentile(stats, [2.5, 97.5], axis=0)
    return p, low, high


def bootstrap_seeds_mean_diff(
    model_sums: Sequence[np.ndarray],
    best_sums: Sequence[np.ndarray],
    count: np.ndarray,
    n_resamples: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two-level (seeds, then users) bootstrap of mean differences, several comparisons.

    For comparison j, ``model_sums[j]`` is (n_users, S_j): per user, the sum over the
    compared folds of model seed s's values; ``best_sums[j]`` (n_users, S_best) the same for
    the best model's seeds (the same seeds in every comparison), and ``count[:, j]`` the
    number of compared (fold, user) observations.  Each resample draws every model's seeds
    and the best's seeds with replacement (seed means weighted by draw counts), then users
    with replacement (shared by all comparisons).  Returns observed mean difference (all
    seeds averaged), two-sided centred p-value, 2.5% and 97.5% percentiles.
    """
    count = np.asarray(count, np.float64)
    n_users, n_cmp = count.shape
    total = count.sum(axis=0)
    observed = np.full(n_cmp, np.nan)
    for j in range(n_cmp):
        if total[j] > 0:
            diff = model_sums[j].mean(axis=1) - best_sums[j].mean(axis=1)
            observed[j] = diff.sum() / total[j]
    rng = np.random.default_rng(seed)
    n_best = best_sums[0].shape[1] if n_cmp else 1
    best_w = _seed_weights(rng, n_resamples, n_best)
    model_w = [_seed_weights(rng, n_resamples, m.shape[1]) for m in model_sums]
    stats = np.empty((n_resamples, n_cmp))
    for lo, b, counts in _user_resamples(rng, n_resamples, n_users):
        den = counts @ count
        for j in range(n_cmp):
            num = ((counts @ model_sums[j]) * model_w[j][lo : lo + b]).sum(axis=1) - (
                (counts @ best_sums[j]) * best_w[lo : lo + b]
            ).sum(axis=1)
            stats[lo : lo + b, j] = np.divide(
                num, den[:, j], out=np.full(b, np.nan), where=den[:, j] > 0
            )
    p, low, high = _p_and_interval(stats, observed)
    return observed, p, low, high


def _user_resamples(
    rng: np.random.Generator, n_resamples: int, n_users: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Blocks of user resamples: (first resample, block size, counts) where
    ``counts[i, u]`` is how often user ``u`` is drawn in resample ``lo + i``."""
    block = max(1, _BLOCK_CELLS // max(n_users, 1))
    for lo in range(0, n_resamples, block):
        b = min(block, n_resamples - lo)
        draws = rng.integers(0, n_users, size=(b, n_users))
        flat = (np.arange(b)[:, None] * n_users + draws).ravel()
        counts = np.bincount(flat, minlength=b * n_users).reshape(b, n_users).astype(np.float64)
        yield lo, b, counts


def bootstrap_mean_diff(
    diff_sum: np.ndarray, count: np.ndarray, n_resamples: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paired cluster bootstrap of mean differences for several comparisons at once.

    ``diff_sum`` and ``count`` are (n_users, n_comparisons): per user, the sum of the
    paired differences and their number.  Users are resampled with replacement (the same
    resamples for every comparison).  Returns the observed mean difference, the two-sided
    p-value (centred bootstrap), and the 2.5% / 97.5% percentiles, each per comparison.
    """
    d = np.asarray(diff_sum, np.float64)
    n = np.asarray(count, np.float64)
    n_users, n_cmp = d.shape
    total = n.sum(axis=0)
    observed = np.divide(d.sum(axis=0), total, out=np.full(n_cmp, np.nan), where=total > 0)
    rng = np.random.default_rng(seed)
    stats = np.empty((n_resamples, n_cmp))
    for lo, b, counts in _user_resamples(rng, n_resamples, n_users):
        num, den = counts @ d, counts @ n
        stats[lo : lo + b] = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
    p, low, high = _p_and_interval(stats, observed)
    return observed, p, low, high
