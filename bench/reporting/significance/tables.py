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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.metrics import lower_is_better
from bench.execution.record import RowKey, is_ok_test, row_key, table_key
from bench.reporting.significance.bootstrap import bootstrap_seeds_mean_diff
from bench.reporting.significance.paired_tests import (
    ALPHA,
    METHODS,
    N_RESAMPLES,
    holm,
    paired_test,
)
from bench.reporting.significance.pairing import (
    Paired,
    SeedPaired,
    as_dirs,
    fold_prints,
    pair,
    pair_seeds,
    same_rows,
    seed_values,
)
from bench.reporting.text import SIGNIFICANCE_MARK

MISSING_POLICIES = ("zero", "drop")
#: Appended to the metric cell of a model not significantly different from the best.
MARKER = SIGNIFICANCE_MARK


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
    best_seeds = seed_values(rows[best], results_dir, metric)

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
    model_seeds = {k: seed_values(rows[k], results_dir, metric) for k in others}
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
    best_prints = fold_prints(rows[best])
    paired: dict[RowKey, Paired] = {}  # one seed on both sides: the one-level tests
    seed_paired: dict[RowKey, SeedPaired] = {}  # several seeds on a side: two-level
    out: dict[RowKey, SignificanceResult] = {}
    for k in others:
        seeds = model_seeds[k]
        if not seeds:
            out[k] = untested(k, f"no per-user values of {metric} stored for this model")
            continue
        # Users of different train / test rows are not pairs: such folds are left out.
        prints = fold_prints(rows[k])
        other_rows = sorted(
            f for f in {f for vals in seeds.values() for f in vals}
            if f in best_prints
            and not all(same_rows(a, b) for a in prints[f] for b in best_prints[f])
        )
        if len(seeds) == 1 and len(best_index) == 1:
            mine = indexed(next(iter(seeds.values())), other_rows)
            p = pair(mine, next(iter(best_index.values())), len(all_users), missing,
                      other_rows)
            if p.n_pairs == 0:
                out[k] = untested(k, "no (fold, user) observations shared with the best model")
                continue
            paired[k] = p
        else:
            mine_seeds = {s: indexed(vals, other_rows) for s, vals in seeds.items()}
            sp = pair_seeds(mine_seeds, best_index, len(all_users), missing, other_rows)
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
        return cls(as_dirs(results_dir))

    def table(self, records: list[dict], metric: str) -> dict[RowKey, SignificanceResult]:
        return mark_table(records, self.results_dirs, metric) if self.results_dirs else {}

    def suffix(self, result: SignificanceResult | None) -> str:
        return marker(result)

    def legend(self, column: str) -> str:
        return legend(column)
