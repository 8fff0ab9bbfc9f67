"""Paired significance tests read from a stored results dir (no model is run)."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from bench.execution import record, store
from bench.execution.trial import save_per_user
from bench.reporting import leaderboard, significance

SPLIT = {"method": "random", "seed": 0, "test_fraction": 0.2}
OPTIONS = {"ks": [10], "threshold": 4.0}


def ndcg_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-user values shaped like NDCG@10: many users at 0, the rest spread over (0, 1]."""
    return np.where(rng.random(n) < 0.4, 0.0, rng.beta(2.0, 3.0, n))


def write_trial(
    results: Path,
    adapter: str,
    values: np.ndarray | None,
    fold: int = 0,
    users: np.ndarray | None = None,
    split: dict | None = None,
    metric: str = "ndcg@10",
    extra_metrics: dict | None = None,
    seed: int | None = None,
) -> dict:
    """Store one trial record (and its per-user file unless ``values`` is None); ``seed``
    (the model's) is recorded only when given."""
    split = split or SPLIT
    identity = f"{adapter}|{fold}|{json.dumps(split, sort_keys=True)}"
    if seed is not None:
        identity += f"|seed={seed}"
    trial_id = f"{zlib.crc32(identity.encode()):08x}"
    metrics = dict(extra_metrics or {})
    per_user_file = None
    if values is not None:
        users = np.arange(len(values), dtype=np.int32) if users is None else users
        per_user_file, _ = save_per_user(results, trial_id, {"user": users, metric: values})
        metrics[metric] = float(np.mean(values))
    record = {
        "trial_id": trial_id,
        "dataset": "synthetic",
        "split": split,
        "split_label": "random 80/20",
        "fold": fold,
        "adapter": adapter,
        "label": "defaults",
        "stage": "test",
        "params": {},
        "metric_options": OPTIONS,
        "status": "ok",
        "metrics": metrics,
        "intervals": {},
        "fit_seconds": 0.1,
        "per_user_file": per_user_file,
    }
    if seed is not None:
        record["seed"] = seed
    store.append(store.run_file(results, "sig"), record)
    return record


def by_adapter(results: dict) -> dict[str, significance.SignificanceResult]:
    return {key[0]: res for key, res in results.items()}


def marks(results_dir: Path, metric: str = "ndcg@10", **options) -> dict:
    records = store.load([results_dir])
    return by_adapter(significance.mark_table(records, results_dir, metric, **options))


@pytest.mark.parametrize("method", significance.METHODS)
def test_planted_difference_is_flagged_and_identical_model_is_not(tmp_path, method):
    rng = np.random.default_rng(1)
    a = ndcg_like(rng, 400)
    noisy = np.clip(a - 0.05 + rng.normal(0, 0.1, a.size), 0, 1)
    write_trial(tmp_path, "lib.A", a)
    write_trial(tmp_path, "lib.Minus", a - 0.05)  # A minus a clear margin
    write_trial(tmp_path, "lib.NoisyMinus", noisy)  # A minus the margin, plus noise
    write_trial(tmp_path, "lib.Same", a.copy())  # an A-A comparison with identical values

    res = marks(tmp_path, method=method)

    assert res["lib.A"].is_best and not res["lib.A"].tested
    for name in ("lib.Minus", "lib.NoisyMinus"):
        assert res[name].different, res[name]
        assert not res[name].tied_with_best
        assert res[name].mean_diff < 0
        assert res[name].ci_high < 0
    assert res["lib.Minus"].mean_diff == pytest.approx(-0.05)
    same = res["lib.Same"]
    assert same.tied_with_best and same.p_value == 1.0 and same.mean_diff == 0.0
    assert significance.marker(same) == significance.MARKER
    assert significance.marker(res["lib.Minus"]) == ""
    assert significance.marker(res["lib.A"]) == ""


@pytest.mark.parametrize("method", significance.METHODS)
def test_same_distribution_is_rejected_at_the_nominal_rate(method):
    # 400 independent A-A comparisons (two draws from one distribution for the same users):
    # uncorrected p-values must reject at about alpha, neither never nor too often.
    rng = np.random.default_rng(7)
    n_users, n_cmp = 300, 400
    a = ndcg_like(rng, n_users * n_cmp).reshape(n_users, n_cmp)
    b = ndcg_like(rng, n_users * n_cmp).reshape(n_users, n_cmp)
    _, p, low, high = significance.paired_test(b - a, np.ones((n_users, n_cmp)), method,
                                               n_resamples=1000, seed=3)
    for alpha in (0.05, 0.2):
        expected = alpha * n_cmp
        sd = math.sqrt(n_cmp * alpha * (1 - alpha))
        assert abs((p < alpha).sum() - expected) <= 3.5 * sd, (alpha, (p < alpha).sum())
    # The 95% interval covers the true difference (0) about 95% of the time.
    covered = ((low <= 0) & (high >= 0)).mean()
    assert 0.91 <= covered <= 0.985


def test_same_distribution_through_stored_results_across_seeds(tmp_path):
    # End to end (files, best-model selection, Holm): A-A tables flag at about alpha.
    flagged = 0
    n_seeds = 40
    for seed in range(n_seeds):
        results = tmp_path / str(seed)
        rng = np.random.default_rng(100 + seed)
        write_trial(results, "lib.A", ndcg_like(rng, 250))
        write_trial(results, "lib.B", ndcg_like(rng, 250))
        res = marks(results, n_resamples=500, seed=seed)
        flagged += sum(r.different for r in res.values())
    assert flagged <= 7  # expected 2 at alpha 0.05; 7 is beyond 3.5 standard deviations


def test_holm_on_a_hand_case():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    np.testing.assert_allclose(significance.holm(p), [0.03, 0.06, 0.06, 0.02])
    adjusted = significance.holm([math.nan, 0.02, 0.5])  # NaN does not count in m
    assert math.isnan(adjusted[0])
    np.testing.assert_allclose(adjusted[1:], [0.04, 0.5])
    np.testing.assert_allclose(significance.holm([0.9, 0.8]), [1.0, 1.0])  # capped at 1
    assert significance.holm([]).size == 0


def test_table_p_values_are_holm_corrected_across_the_table(tmp_path):
    rng = np.random.default_rng(2)
    a = ndcg_like(rng, 300)
    write_trial(tmp_path, "lib.A", a)
    for i, shift in enumerate((0.0, 0.01, 0.02, 0.04)):
        write_trial(tmp_path, f"lib.M{i}", np.clip(a - shift + rng.normal(0, 0.15, 300), 0, 1))
    res = marks(tmp_path)
    tested = [r for r in res.values() if r.tested]
    assert len(tested) == 4
    raw = [r.p_value for r in tested]
    np.testing.assert_allclose([r.p_holm for r in tested], significance.holm(raw))
    assert all(r.p_holm >= r.p_value for r in tested)


def test_users_are_paired_by_fold_and_user_and_pooled_over_folds(tmp_path):
    rng = np.random.default_rng(3)
    users = np.arange(200, dtype=np.int32)
    split = {"method": "kfold", "seed": 0, "n_folds": 2}
    for fold in (0, 1):
        best = ndcg_like(rng, 200) + 0.01
        write_trial(tmp_path, "lib.Best", best, fold, users, split)
        # Same values per (fold, user) stored in another user order: a pairing by file
        # position or by user alone would see differences.
        perm = rng.permutation(200)
        write_trial(tmp_path, "lib.Copy", best[perm], fold, users[perm], split)
        write_trial(tmp_path, "lib.Worse", best - 0.01, fold, users, split)
    res = marks(tmp_path)
    assert res["lib.Best"].is_best
    copy = res["lib.Copy"]
    assert copy.mean_diff == 0.0 and copy.p_value == 1.0 and copy.tied_with_best
    assert (copy.n_pairs, copy.n_users, copy.folds) == (400, 200, (0, 1))
    assert res["lib.Worse"].different


def test_missing_users_and_folds_are_handled_explicitly(tmp_path):
    rng = np.random.default_rng(4)
    split = {"method": "kfold", "seed": 0, "n_folds": 2}
    # Fold 1 scores higher, so the best model's mean over both folds stays the best.
    values = {f: ndcg_like(rng, 100) + 0.01 + 0.3 * f for f in (0, 1)}
    for f in (0, 1):
        write_trial(tmp_path, "lib.Best", values[f], f, split=split)
    # Same values as the best, but 10 users of fold 0 are missing and fold 1 failed.
    write_trial(tmp_path, "lib.Partial", values[0][:90], 0, np.arange(90, dtype=np.int32),
                split)

    dropped = marks(tmp_path, missing="drop")["lib.Partial"]
    assert dropped.folds == (0,) and "fold(s) 1 missing for this model" in dropped.note
    assert dropped.n_unpaired == 10 and dropped.n_pairs == 90
    assert dropped.mean_diff == 0.0 and dropped.tied_with_best

    zero = marks(tmp_path, missing="zero")["lib.Partial"]  # the default
    assert zero.n_pairs == 100 and zero.n_unpaired == 10 and "scored 0" in zero.note
    assert zero.mean_diff == pytest.approx(-values[0][90:].sum() / 100)


def test_models_without_per_user_values_are_not_tested(tmp_path):
    rng = np.random.default_rng(5)
    write_trial(tmp_path, "lib.Ranker", ndcg_like(rng, 100), extra_metrics={"rmse": 0.95})
    # A rating-only model has RMSE but no ranking metric and no per-user file.
    write_trial(tmp_path, "lib.RatingOnly", None, extra_metrics={"rmse": 0.9})
    ranking = marks(tmp_path)
    assert set(ranking) == {"lib.Ranker"}  # a model without the metric gets no row

    rmse = marks(tmp_path, metric="rmse")
    assert rmse["lib.RatingOnly"].is_best  # lower RMSE is better
    assert not any(r.tested for r in rmse.values())
    assert all("per-rating errors are not stored" in r.note for r in rmse.values())
    assert not any(significance.marker(r) for r in rmse.values())


def test_per_user_file_missing_on_disk_is_not_tested(tmp_path):
    rng = np.random.default_rng(6)
    write_trial(tmp_path, "lib.Best", ndcg_like(rng, 100) + 0.5)
    rec = write_trial(tmp_path, "lib.Lost", ndcg_like(rng, 100))
    (tmp_path / rec["per_user_file"]).unlink()
    lost = marks(tmp_path)["lib.Lost"]
    assert not lost.tested and "no per-user values" in lost.note
    # A truncated file (a writer killed mid-way) is reported the same way, not raised.
    (tmp_path / rec["per_user_file"]).write_bytes(b"PK\x03\x04 truncated")
    assert "no per-user values" in marks(tmp_path)["lib.Lost"].note


def test_mark_all_splits_tables_and_results_dirs_come_from_sources(tmp_path):
    rng = np.random.default_rng(8)
    other = {"method": "random", "seed": 1, "test_fraction": 0.2}
    for split in (SPLIT, other):
        write_trial(tmp_path, "lib.A", ndcg_like(rng, 100) + 0.2, split=split)
        write_trial(tmp_path, "lib.B", ndcg_like(rng, 100), split=split)
    records = store.load([tmp_path])
    with pytest.raises(ValueError, match="one table"):
        significance.mark_table(records, tmp_path, "ndcg@10")
    files = store.files([tmp_path])
    dirs = store.results_dirs(files)
    assert dirs == [tmp_path]
    tables = significance.mark_all(records, dirs, "ndcg@10")
    assert set(tables) == {record.table_key(r) for r in records}
    for table in tables.values():
        assert by_adapter(table)["lib.B"].different


def test_validation_and_failed_records_are_ignored(tmp_path):
    rng = np.random.default_rng(9)
    write_trial(tmp_path, "lib.A", ndcg_like(rng, 100))
    rec = write_trial(tmp_path, "lib.Tuning", ndcg_like(rng, 100) + 0.5)
    rec["stage"] = "validation"
    store.append(store.run_file(tmp_path, "sig"), rec)
    failed = write_trial(tmp_path, "lib.Failed", ndcg_like(rng, 100) + 0.5)
    failed["status"] = "failed"
    store.append(store.run_file(tmp_path, "sig"), failed)
    assert set(marks(tmp_path)) == {"lib.A"}


def test_folds_scored_on_different_rows_are_not_paired(tmp_path):
    # Records of one table whose split fingerprints differ (e.g. the dataset changed
    # between runs) do not hold the same test rows: their users are not pairs.
    rng = np.random.default_rng(10)
    split = {"method": "kfold", "seed": 0, "n_folds": 2}
    for fold in (0, 1):
        best = write_trial(tmp_path, "lib.Best", ndcg_like(rng, 100) + 0.3, fold, split=split)
        best["split_fingerprint"] = f"rows-{fold}"
        store.append(store.run_file(tmp_path, "sig"), best)
        other = write_trial(tmp_path, "lib.Other", ndcg_like(rng, 100), fold, split=split)
        other["split_fingerprint"] = f"rows-{fold}" if fold == 0 else "other-rows"
        store.append(store.run_file(tmp_path, "sig"), other)
    res = marks(tmp_path)["lib.Other"]
    assert res.folds == (0,) and res.n_pairs == 100
    assert "fold(s) 1 left out: dataset or split fingerprint differs" in res.note
    assert "missing for this model" not in res.note


def test_seeds_that_disagree_are_not_a_significant_difference(tmp_path):
    # lib.Seeds ran with two seeds: one as good as lib.Best, one much worse.  Averaged over
    # the seeds it is 0.05 below lib.Best for every user, which a bootstrap over users alone
    # calls highly significant; the seed-level resampling must not.
    rng = np.random.default_rng(11)
    a = ndcg_like(rng, 400)
    write_trial(tmp_path, "lib.Best", a + 0.05, seed=0)
    seeds = {0: a + 0.06 + rng.normal(0, 0.05, a.size), 1: a - 0.06 + rng.normal(0, 0.05, a.size)}
    for s, values in seeds.items():
        write_trial(tmp_path, "lib.Seeds", values, seed=s)

    res = marks(tmp_path)
    assert res["lib.Best"].is_best
    two = res["lib.Seeds"]
    assert two.method == "seed-bootstrap" and two.n_seeds == 2
    assert two.mean_diff == pytest.approx(np.mean((seeds[0] + seeds[1]) / 2 - (a + 0.05)))
    assert two.tied_with_best, two
    assert two.ci_low < -0.1 and two.ci_high > 0.0  # the interval spans both seeds
    # What a test over users only would have said about the seed-averaged values:
    pooled = ((seeds[0] + seeds[1]) / 2 - (a + 0.05))[:, None]
    _, p_users, _, _ = significance.paired_test(pooled, np.ones_like(pooled))
    assert p_users[0] < 0.001
    # The leaderboard row carries the "not different" mark.
    table = leaderboard.render_table(store.load([tmp_path]), significance.Marks.of(tmp_path))
    row = next(line for line in table if "`lib.Seeds`" in line)
    assert significance.MARKER in row and "| 2 |" in row  # seeds column


def test_a_model_is_not_worse_than_a_best_that_has_one_lucky_seed(tmp_path):
    # lib.Lucky is the table's best only because one of its two seeds is very good.
    rng = np.random.default_rng(12)
    a = ndcg_like(rng, 400)
    write_trial(tmp_path, "lib.Single", a, seed=0)
    write_trial(tmp_path, "lib.Lucky", a + 0.15 + rng.normal(0, 0.05, a.size), seed=0)
    write_trial(tmp_path, "lib.Lucky", a - 0.05 + rng.normal(0, 0.05, a.size), seed=1)
    res = marks(tmp_path)
    assert res["lib.Lucky"].is_best and res["lib.Lucky"].n_seeds == 2
    single = res["lib.Single"]
    assert single.method == "seed-bootstrap" and single.n_seeds == 1
    assert single.mean_diff == pytest.approx(-0.05, abs=0.01)
    assert single.tied_with_best, single


def test_seeds_that_agree_keep_a_clear_difference_significant(tmp_path):
    rng = np.random.default_rng(13)
    split = {"method": "kfold", "seed": 0, "n_folds": 2}
    for fold in (0, 1):
        a = ndcg_like(rng, 300)
        write_trial(tmp_path, "lib.Best", a, fold, split=split, seed=0)
        for s in (0, 1, 2):
            noisy = a - 0.05 + rng.normal(0, 0.02, a.size)
            write_trial(tmp_path, "lib.Worse", noisy, fold, split=split, seed=s)
    for method in significance.METHODS:  # several seeds: two-level bootstrap either way
        worse = marks(tmp_path, method=method)["lib.Worse"]
        assert worse.method == "seed-bootstrap" and worse.n_seeds == 3
        assert worse.folds == (0, 1) and worse.n_pairs == 600 and worse.n_users == 300
        assert worse.different and worse.ci_high < 0
        assert worse.mean_diff == pytest.approx(-0.05, abs=0.005)


def test_a_fold_missing_for_one_seed_is_left_out_and_named(tmp_path):
    rng = np.random.default_rng(14)
    split = {"method": "kfold", "seed": 0, "n_folds": 2}
    for fold in (0, 1):
        a = ndcg_like(rng, 200)
        write_trial(tmp_path, "lib.Best", a + 0.1, fold, split=split, seed=0)
        write_trial(tmp_path, "lib.Model", a, fold, split=split, seed=0)
        if fold == 0:  # seed 1 failed on fold 1
            write_trial(tmp_path, "lib.Model", a, fold, split=split, seed=1)
    model = marks(tmp_path)["lib.Model"]
    assert model.folds == (0,) and model.n_pairs == 200
    assert "fold(s) 1 left out: not run by every seed" in model.note
