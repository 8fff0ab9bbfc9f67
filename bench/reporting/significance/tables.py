"""Paired significance tests against the best model of a table, from stored results only.

For each leaderboard table (same dataset, split and metric options; stage ``test``) every
model is compared with the table's best model on one ranking metric using the per-user
values stored next to the records (``per_user_file``).  Observations are paired by
``(fold, user)``: with k-fold splits the users of all folds are pooled, and the resampling
unit is the *user* (a user's pairs from several folds move together), because the same
user's results in different folds are not independent.

Tests (two-sided, H0: mean per-user difference = 0):

* ``bootstrap`` (default): paired cluster bootstrap of the mean difference; every model of
  the table is resampled with the same seeded resamples, in one matrix product.  The
  p-value is the share of centred resampled differences at least as large as the observed
  one, ``(1 + count) / (B + 1)``; ``B`` is raised so that the smallest possible p-value
  survives the Holm correction for the table's number of comparisons.
* ``wilcoxon``: Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) on each user's mean
  difference over folds; zero differences are dropped (Wilcoxon's convention).  It tests
  a shift of the per-user differences, not their mean, so it can disagree with the table.

Calibration (A-A comparisons, per-user values shaped like NDCG@10): with 300 users both
tests reject at 4-6% for a nominal 5%; with 30 users the bootstrap rejects at about 7%
(the percentile bootstrap is anti-conservative for small samples), Wilcoxon at 5.5%: for
tables of fewer than about 100 evaluated users prefer ``method="wilcoxon"``.

Rows run with several model seeds (a leaderboard row pools its records over folds AND
seeds; per-user values are stored per record): a comparison where the model or the best
row has more than one seed uses a *two-level* bootstrap, whatever ``method`` says.  In
each resample every such row draws its seeds with replacement (the best row's draw is
shared by all comparisons of the resample) and its per-(fold, user) value is the average
of the drawn seeds' values; then users are resampled as clusters, as above, with the same
user draws for every comparison.  The observed difference averages every seed of each
side; the p-value and interval are computed from the resampled differences as for
``bootstrap``.  So a model whose seeds disagree is not declared different from the best
because averaging its seeds shrinks the user-level noise: the seed-to-seed spread is in the
resampling distribution.  Only folds run by every seed of both sides are compared (others
are named in ``note``); with ``missing="zero"`` a user absent from one seed's file scores 0
for that seed, with ``"drop"`` it is dropped unless present in every seed of both sides.
With 2-3 seeds the seed level of the bootstrap is coarse (it cannot be more precise than
the seeds are); such comparisons have ``method == "seed-bootstrap"`` and ``n_seeds``.
Comparisons where both sides have one seed are exactly the one-level tests above.

The best model is the row with the best mean over folds (and seeds), as the leaderboard's
bold cell; ties go to the first row key.  A model that only ran some folds can be the best
on those; its comparisons then use only the folds both sides have.

p-values are Holm-corrected across the comparisons of one table; a model whose corrected
p-value is not below ``alpha`` is "not significantly different from the best" and the
leaderboard marks it (``marker``).

Missing observations are handled explicitly:

* a model with no per-user values for the metric (a rating-only model, or a metric that is
  not per user such as RMSE / MAE / coverage: per-rating errors are not stored) is not
  tested (``tested`` is False and ``note`` says why);
* a fold present on only one side (a failed or missing trial) is left out of that
  comparison and named in ``note`` (the failure itself is listed under the table);
* within a fold present on both sides, a user evaluated on one side only is scored 0 on
  the other (``missing="zero"``: no list means no hits, so a model cannot gain by skipping
  hard users) or dropped (``missing="drop"``); the count is ``n_unpaired``.
"""

from __future__ import annotations

import math
import zipfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.metrics import lower_is_better
from bench.execution import store
from bench.execution.record import RowKey, is_ok_test, row_key, table_key
from bench.reporting.text import SIGNIFICANCE_MARK

ALPHA = 0.05
N_RESAMPLES = 2000
METHODS = ("bootstrap", "wilcoxon")
MISSING_POLICIES = ("zero", "drop")
#: Appended to the metric cell of a model not significantly different from the best.
MARKER = SIGNIFICANCE_MARK
#: Bootstrap counts matrices are built in blocks of about this many cells (memory bound).
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class SignificanceResult:
    """One model compared with its table's best model on ``metric``."""

    metric: str
    best: RowKey  # row key of the table's best model
    is_best: bool
    method: str  # "bootstrap", "wilcoxon", "seed-bootstrap" (several seeds), "" untested
    mean_diff: float = math.nan  # mean over paired observations of (model - best)
    ci_low: float = math.nan  # 95% interval of mean_diff
    ci_high: float = math.nan
    p_value: float = math.nan  # two-sided, uncorrected
    p_holm: float = math.nan  # Holm-corrected across the table's comparisons
    alpha: float = ALPHA
    n_users: int = 0  # distinct users (resampling clusters) compared
    n_pairs: int = 0  # paired (fold, user) observations
    n_unpaired: int = 0  # (fold, user) observations present on one side only
    folds: tuple[int, ...] = ()  # folds compared
    note: str = ""
    n_seeds: int = 1  # model seeds compared (> 1, or a multi-seed best: "seed-bootstrap")

    @property
    def tested(self) -> bool:
        return not self.is_best and not math.isnan(self.p_holm)

    @property
    def different(self) -> bool:
        """Significantly different from the best (Holm-corrected p < alpha)."""
        return self.tested and self.p_holm < self.alpha

    @property
    def tied_with_best(self) -> bool:
        """Tested and NOT significantly different from the best: what the table marks."""
        return self.tested and not self.different


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


def _as_dirs(results_dir: Path | str | Sequence[Path | str]) -> tuple[Path, ...]:
    if isinstance(results_dir, str | Path):
        return (Path(results_dir),)
    return tuple(Path(d) for d in results_dir)


def _load_arrays(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Only the two arrays needed (an .npz member is read on access), nothing cached."""
    with np.load(path) as data:
        if metric not in data.files or "user" not in data.files:
            return None
        return data["user"], data[metric]


def per_user_values(
    record: dict, results_dir: Path | str | Sequence[Path | str], metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(users, values) of ``metric`` stored for ``record``, or None when not stored."""
    rel = record.get("per_user_file")
    if not rel:
        return None
    arrays = None
    for d in _as_dirs(results_dir):
        path = (d / rel).resolve()
        if path.is_file():
            try:
                arrays = _load_arrays(path, metric)
            except (OSError, ValueError, zipfile.BadZipFile):
                return None  # unreadable (e.g. truncated): reported as no per-user values
            break
    else:  # no per-user file (published results): the run's compact pack, if any
        for d in _as_dirs(results_dir):
            arrays = store.pack_values(record, d, metric)
            if arrays is not None:
                break
    if arrays is None:
        return None
    users = np.asarray(arrays[0], dtype=np.int64)
    values = np.asarray(arrays[1], dtype=np.float64)
    keep = ~np.isnan(values)  # an undefined value is a missing observation
    return users[keep], values[keep]




def _table_mean(recs: list[dict], metric: str) -> float:
    vals = [r["metrics"][metric] for r in recs if (r.get("metrics") or {}).get(metric) is not None]
    return float(np.mean(vals)) if vals else math.nan


def best_row(rows: dict[RowKey, list[dict]], metric: str) -> RowKey | None:
    """Row with the best mean over folds of ``metric`` (ties: the first row key in order)."""
    means = {k: _table_mean(rs, metric) for k, rs in rows.items()}
    means = {k: v for k, v in means.items() if not math.isnan(v)}
    if not means:
        return None
    sign = 1.0 if lower_is_better(metric) else -1.0
    return min(sorted(means), key=lambda k: sign * means[k])


def _fold_values(
    recs: list[dict], results_dir: Path | str | Sequence[Path | str], metric: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for r in recs:
        got = per_user_values(r, results_dir, metric)
        if got is not None:
            out[int(r["fold"])] = got
    return out


def _seed_values(
    recs: list[dict], results_dir: Path | str | Sequence[Path | str], metric: str
) -> dict[object, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per model seed (``record["seed"]``), ``_fold_values`` of that seed's records; seeds
    without any per-user values are left out."""
    by_seed: dict[object, list[dict]] = defaultdict(list)
    for r in recs:
        by_seed[r.get("seed")].append(r)
    out = {}
    for s in sorted(by_seed, key=lambda s: (s is None, str(s))):
        vals = _fold_values(by_seed[s], results_dir, metric)
        if vals:
            out[s] = vals
    return out


def _fold_prints(recs: list[dict]) -> dict[int, set[tuple]]:
    """Per fold, what identifies its rows in each record: dataset and split fingerprints
    (when recorded); several records per fold when a row has several seeds."""
    out: dict[int, set[tuple]] = defaultdict(set)
    for r in recs:
        out[int(r["fold"])].add((r.get("dataset_fingerprint"), r.get("split_fingerprint")))
    return out


def _same_rows(a: tuple, b: tuple) -> bool:
    """False only when both sides recorded a fingerprint and they differ."""
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


@dataclass
class _Paired:
    """One comparison's per-user sums of differences (indexed by the table's user index)."""

    diff_sum: np.ndarray
    count: np.ndarray
    n_pairs: int
    n_unpaired: int
    folds: tuple[int, ...]
    note: str


def _pair(
    model: dict[int, tuple[np.ndarray, np.ndarray]],
    best: dict[int, tuple[np.ndarray, np.ndarray]],
    n_users: int,
    missing: str,
    unpairable: Sequence[int] = (),
) -> _Paired:
    diff_sum = np.zeros(n_users)
    count = np.zeros(n_users)
    folds = tuple(sorted(set(model) & set(best)))
    n_pairs = n_unpaired = 0
    for f in folds:  # a handful of folds; users are vectorised
        (mu, mv), (bu, bv) = model[f], best[f]
        users = np.union1d(mu, bu)
        in_m, in_b = np.isin(users, mu), np.isin(users, bu)
        m_full = np.zeros(len(users))
        b_full = np.zeros(len(users))
        m_full[np.searchsorted(users, mu)] = mv
        b_full[np.searchsorted(users, bu)] = bv
        both = in_m & in_b
        keep = both if missing == "drop" else np.ones(len(users), bool)
        n_unpaired += int((~both).sum())
        n_pairs += int(keep.sum())
        diff_sum += np.bincount(users[keep], m_full[keep] - b_full[keep], minlength=n_users)
        count += np.bincount(users[keep], minlength=n_users)
    notes = []
    if unpairable:
        notes.append(
            f"fold(s) {', '.join(map(str, unpairable))} left out: dataset or split "
            "fingerprint differs from the best model's"
        )
    if only_best := sorted(set(best) - set(model) - set(unpairable)):
        notes.append(f"fold(s) {', '.join(map(str, only_best))} missing for this model")
    if only_model := sorted(set(model) - set(best)):
        notes.append(f"fold(s) {', '.join(map(str, only_model))} missing for the best model")
    if n_unpaired:
        how = "scored 0 on the missing side" if missing == "zero" else "dropped"
        notes.append(f"{n_unpaired} (fold, user) observations on one side only, {how}")
    return _Paired(diff_sum, count, n_pairs, n_unpaired, folds, "; ".join(notes))


@dataclass
class _SeedPaired:
    """One comparison with several seeds on a side: per user and seed, the sums over the
    compared folds of each seed's values (columns: the model's seeds, then the best's)."""

    model_sums: np.ndarray  # (n_users, n_model_seeds)
    best_sums: np.ndarray  # (n_users, n_best_seeds)
    count: np.ndarray  # (n_users,) compared (fold, user) observations
    n_pairs: int
    n_unpaired: int
    folds: tuple[int, ...]
    note: str


def _pair_seeds(
    model: dict[object, dict[int, tuple[np.ndarray, np.ndarray]]],
    best: dict[object, dict[int, tuple[np.ndarray, np.ndarray]]],
    n_users: int,
    missing: str,
    unpairable: Sequence[int] = (),
) -> _SeedPaired:
    """Like ``_pair`` for sides with several seeds ({seed: {fold: (user index, values)}})."""
    sides = [*model.values(), *best.values()]
    n_model = len(model)
    every = set.intersection(*(set(d) for d in sides))
    some = set().union(*(set(d) for d in sides))
    folds = tuple(sorted(every - set(unpairable)))
    sums = np.zeros((n_users, len(sides)))
    count = np.zeros(n_users)
    n_pairs = n_unpaired = 0
    for f in folds:
        users = np.unique(np.concatenate([d[f][0] for d in sides]))
        full = np.zeros((len(users), len(sides)))
        present = np.ones(len(users), bool)
        for j, d in enumerate(sides):
            u, v = d[f]
            pos = np.searchsorted(users, u)
            full[pos, j] = v
            present &= np.isin(users, u)
        keep = present if missing == "drop" else np.ones(len(users), bool)
        n_unpaired += int((~present).sum())
        n_pairs += int(keep.sum())
        sums[users[keep]] += full[keep]  # user indices are unique within a fold
        count[users[keep]] += 1
    notes = []
    if unpairable:
        notes.append(
            f"fold(s) {', '.join(map(str, unpairable))} left out: dataset or split "
            "fingerprint differs from the best model's"
        )
    if partial := sorted(some - every - set(unpairable)):
        notes.append(
            f"fold(s) {', '.join(map(str, partial))} left out: not run by every seed of "
            "both models"
        )
    if n_unpaired:
        how = "scored 0 for the seeds missing them" if missing == "zero" else "dropped"
        notes.append(
            f"{n_unpaired} (fold, user) observations not in every seed of both sides, {how}"
        )
    return _SeedPaired(
        sums[:, :n_model], sums[:, n_model:], count, n_pairs, n_unpaired, folds,
        "; ".join(notes),
    )


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


def mark_table(
    records: list[dict],
    results_dir: Path | str | Sequence[Path | str],
    metric: str,
    *,
    method: str = "bootstrap",
    alpha: float = ALPHA,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    missing: str = "zero",
) -> dict[RowKey, SignificanceResult]:
    """Compare every model of ONE table with the table's best model on ``metric``.

    ``records`` are one table's records (``record.table_key`` equal; records that are
    not ``ok`` or not stage ``test`` are ignored).  Returns a result per row key (as
    ``record.row_key``) that has ``metric``; empty when no row has it.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    recs = [r for r in records if is_ok_test(r)]
    if len({table_key(r) for r in recs}) > 1:
        raise ValueError("mark_table takes one table's records; use mark_all for several")
    rows: dict[RowKey, list[dict]] = defaultdict(list)
    for r in recs:
        rows[row_key(r)].append(r)
    best = best_row(rows, metric)
    if best is None:
        return {}
    has_metric = [k for k in sorted(rows) if not math.isnan(_table_mean(rows[k], metric))]
    best_seeds = _seed_values(rows[best], results_dir, metric)

    def untested(key: RowKey, note: str) -> SignificanceResult:
        return SignificanceResult(metric, best, key == best, "", alpha=alpha, note=note)

    if not best_seeds:
        why = (
            f"{metric} has no per-user values (per-rating errors are not stored)"
            if metric.split("@")[0] in ("rmse", "mae")
            else f"no per-user values of {metric} stored for the best model"
        )
        return {k: untested(k, why) for k in has_metric}

    others = [k for k in has_metric if k != best]
    model_seeds = {k: _seed_values(rows[k], results_dir, metric) for k in others}
    all_users = np.unique(
        np.concatenate([u for vals in best_seeds.values() for u, _ in vals.values()])
    )
    for seeds in model_seeds.values():
        for vals in seeds.values():
            for u, _ in vals.values():
                all_users = np.union1d(all_users, u)

    def indexed(vals: dict, skip: Sequence[int] = ()) -> dict:
        return {
            f: (np.searchsorted(all_users, u), v) for f, (u, v) in vals.items() if f not in skip
        }

    best_index = {s: indexed(vals) for s, vals in best_seeds.items()}
    best_prints = _fold_prints(rows[best])
    paired: dict[RowKey, _Paired] = {}  # one seed on both sides: the one-level tests
    seed_paired: dict[RowKey, _SeedPaired] = {}  # several seeds on a side: two-level
    out: dict[RowKey, SignificanceResult] = {}
    for k in others:
        seeds = model_seeds[k]
        if not seeds:
            out[k] = untested(k, f"no per-user values of {metric} stored for this model")
            continue
        # Users of different train / test rows are not pairs: such folds are left out.
        prints = _fold_prints(rows[k])
        other_rows = sorted(
            f for f in {f for vals in seeds.values() for f in vals}
            if f in best_prints
            and not all(_same_rows(a, b) for a in prints[f] for b in best_prints[f])
        )
        if len(seeds) == 1 and len(best_index) == 1:
            mine = indexed(next(iter(seeds.values())), other_rows)
            p = _pair(mine, next(iter(best_index.values())), len(all_users), missing,
                      other_rows)
            if p.n_pairs == 0:
                out[k] = untested(k, "no (fold, user) observations shared with the best model")
                continue
            paired[k] = p
        else:
            mine_seeds = {s: indexed(vals, other_rows) for s, vals in seeds.items()}
            sp = _pair_seeds(mine_seeds, best_index, len(all_users), missing, other_rows)
            if sp.n_pairs == 0:
                out[k] = untested(
                    k, "no (fold, user) observations shared by every seed of both models"
                )
                continue
            seed_paired[k] = sp

    # The smallest bootstrap p-value is 1/(B+1); keep it well below alpha / m so a clear
    # difference survives Holm in a table of m comparisons.
    n_cmp = len(paired) + len(seed_paired)
    b = max(n_resamples, math.ceil(4 * n_cmp / alpha))
    tests: dict[RowKey, tuple[float, float, float, float]] = {}
    keys = list(paired)
    if keys:
        diff_sum = np.stack([paired[k].diff_sum for k in keys], axis=1)
        count = np.stack([paired[k].count for k in keys], axis=1)
        observed, p_raw, low, high = paired_test(diff_sum, count, method, b, seed)
        tests.update({k: (observed[j], p_raw[j], low[j], high[j]) for j, k in enumerate(keys)})
    seed_keys = list(seed_paired)
    if seed_keys:
        observed, p_raw, low, high = bootstrap_seeds_mean_diff(
            [seed_paired[k].model_sums for k in seed_keys],
            [seed_paired[k].best_sums for k in seed_keys],
            np.stack([seed_paired[k].count for k in seed_keys], axis=1),
            b,
            seed,
        )
        tests.update(
            {k: (observed[j], p_raw[j], low[j], high[j]) for j, k in enumerate(seed_keys)}
        )
    all_keys = [*keys, *seed_keys]
    p_adj = holm([tests[k][1] for k in all_keys])
    for j, k in enumerate(all_keys):
        pk = paired[k] if k in paired else seed_paired[k]
        note = pk.note
        if k in seed_paired and method != "bootstrap":
            note = "; ".join(filter(None, [
                note, f"two-level seed bootstrap instead of {method} (seeds vary)"
            ]))
        out[k] = SignificanceResult(
            metric=metric,
            best=best,
            is_best=False,
            method=method if k in paired else "seed-bootstrap",
            mean_diff=float(tests[k][0]),
            ci_low=float(tests[k][2]),
            ci_high=float(tests[k][3]),
            p_value=float(tests[k][1]),
            p_holm=float(p_adj[j]),
            alpha=alpha,
            n_users=int((pk.count > 0).sum()),
            n_pairs=pk.n_pairs,
            n_unpaired=pk.n_unpaired,
            folds=pk.folds,
            note=note,
            n_seeds=len(model_seeds[k]),
        )
    n_best = sum(len(u) for vals in best_seeds.values() for u, _ in vals.values())
    out[best] = SignificanceResult(
        metric,
        best,
        True,
        method if len(best_seeds) == 1 else "seed-bootstrap",
        mean_diff=0.0,
        alpha=alpha,
        n_users=int(len(all_users)),
        n_pairs=n_best,
        folds=tuple(sorted({f for vals in best_seeds.values() for f in vals})),
        n_seeds=len(best_seeds),
    )
    return out


def mark_all(
    records: list[dict], results_dir: Path | str | Sequence[Path | str], metric: str, **options
) -> dict[tuple, dict[RowKey, SignificanceResult]]:
    """``mark_table`` for every table (``record.table_key``) of ``records``."""
    tables: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if is_ok_test(r):
            tables[table_key(r)].append(r)
    return {key: mark_table(recs, results_dir, metric, **options) for key, recs in tables.items()}


def marker(result: SignificanceResult | None) -> str:
    """Cell suffix for the leaderboard: ``MARKER`` when tied with the best, else ''."""
    return MARKER if result is not None and result.tied_with_best else ""


def legend(column: str, method: str = "bootstrap", alpha: float = ALPHA) -> str:
    """One sentence explaining ``MARKER`` for the leaderboard's preamble."""
    how = (
        f"paired bootstrap of the mean per-user difference, {N_RESAMPLES}+ resamples of users"
        if method == "bootstrap"
        else "Wilcoxon signed-rank test on per-user differences"
    )
    return (
        f"{MARKER.strip()} in {column}: not significantly different from the table's best "
        f"model ({how}; pairs matched by fold and user; Holm-corrected across the table, "
        f"alpha {alpha:g}). A row run with several seeds is compared by a two-level bootstrap: "
        "each resample draws the row's seeds with replacement and averages their per-user "
        "values, then resamples users, so seed-to-seed variation counts and a model is not "
        "called different from the best just because averaging seeds narrows the user-level "
        "noise. Ranking metrics only: per-rating errors for RMSE / MAE are not stored."
    )


@dataclass(frozen=True)
class Marks:
    """What a table asks of this module, bound to the results dirs holding the per-user
    files: ``table`` (``mark_table`` of one table's records), ``suffix`` (``marker``) and
    ``legend``.  The leaderboard is handed one and never imports this module."""

    results_dirs: tuple[Path, ...]

    @classmethod
    def of(cls, results_dir: Path | str | Sequence[Path | str]) -> Marks:
        return cls(_as_dirs(results_dir))

    def table(self, records: list[dict], metric: str) -> dict[RowKey, SignificanceResult]:
        return mark_table(records, self.results_dirs, metric) if self.results_dirs else {}

    def suffix(self, result: SignificanceResult | None) -> str:
        return marker(result)

    def legend(self, column: str) -> str:
        return legend(column)
