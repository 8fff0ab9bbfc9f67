"""`bench compare`: planted regressions are caught, noise within tolerance is not."""

import copy
import json
import subprocess
import sys

from bench.execution import store
from bench.reporting import compare


def record(adapter="surprise.SVD", fold=0, rmse=0.94, ndcg=0.10, fit=1.0, calib=0.05, **kw):
    rec = {
        "trial_id": f"{adapter}-{fold}",
        "dataset": "ml-100k",
        "split": {"method": "random", "seed": 0, "test_fraction": 0.2},
        "split_label": "random 80/20",
        "fold": fold,
        "adapter": adapter,
        "params": {"n_factors": 100},
        "seed": 0,
        "metric_options": {"ks": [10], "threshold": 4.0},
        "status": "ok",
        "metrics": {"rmse": rmse, "ndcg@10": ndcg},
        "fit_seconds": fit,
        "env": {"calibration_seconds": calib},
    }
    rec.update(kw)
    return rec


def test_identical_results_pass():
    base = [record(), record(fold=1)]
    result = compare.compare(base, copy.deepcopy(base))
    assert result.ok and not result.regressions


def test_worse_quality_beyond_tolerance_is_a_regression():
    result = compare.compare([record()], [record(rmse=0.95, ndcg=0.099)])
    flagged = {r["metric"] for r in result.regressions}
    assert flagged == {"rmse"}  # ndcg moved by 0.001, within its 0.005 tolerance
    assert not result.ok
    assert "**REGRESSION**" in compare.render(result)


def test_better_quality_is_not_a_regression():
    assert compare.compare([record()], [record(rmse=0.90, ndcg=0.2)]).ok


def test_custom_tolerances():
    tol = compare.parse_tolerances(["ndcg@10=0.0005"])
    result = compare.compare([record()], [record(ndcg=0.099)], tol)
    assert [r["metric"] for r in result.regressions] == ["ndcg@10"]


def test_time_is_compared_against_the_calibration_workload():
    # Twice as slow on a machine twice as slow: not a regression.
    assert compare.compare([record()], [record(fit=2.0, calib=0.10)]).ok
    # Three times as slow on the same machine: a regression.
    result = compare.compare([record()], [record(fit=3.0)])
    assert [r["metric"] for r in result.regressions] == ["fit_seconds / calibration"]


def test_missing_new_and_failed_trials_are_listed():
    base = [record(), record(adapter="baseline.Bias")]
    cur = [record(status="failed", error="boom"), record(adapter="implicit.ALS")]
    result = compare.compare(base, cur)
    assert not result.ok
    text = compare.render(result)
    assert "Missing from current" in text and "baseline.Bias" in text
    assert "New in current" in text and "implicit.ALS" in text
    assert "Failed now" in text and "boom" in text


def test_cli_exit_codes(tmp_path):
    base, cur = tmp_path / "base.jsonl", tmp_path / "cur.jsonl"
    store.append(base, record())
    store.append(cur, record(rmse=0.99))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "bench", "compare", *map(str, args)],
                              capture_output=True, text=True)

    res = run(base, cur)
    assert res.returncode == 1 and "REGRESSION" in res.stdout
    assert run(base, base).returncode == 0
    assert run(base, cur, "--tolerance", "rmse=0.1").returncode == 0
    bad = run(base, cur, "--tolerance", "rmse")
    assert bad.returncode == 2 and "METRIC=VALUE" in bad.stderr
    assert run(base, tmp_path / "nothing").returncode == 2
    json.loads(base.read_text())  # the store wrote plain JSON lines


def test_a_changed_default_is_compared_not_reported_as_new():
    base = record(spec_params={})
    cur = record(spec_params={}, rmse=0.97)
    cur["params"] = {"n_factors": 50}
    result = compare.compare([base], [cur])
    assert [r["metric"] for r in result.regressions] == ["rmse"]
    assert not result.missing and not result.new
    assert "n_factors 100 -> 50" in compare.render(result)


def test_missing_trials_are_reported_apart_from_regressions(tmp_path):
    base = [record(), record(fold=1)]
    result = compare.compare(base, [record()])
    assert not result.regressions and len(result.missing) == 1 and not result.ok
    summary = "0 regression(s), 1 trial(s) missing from current (--missing fail): FAIL"
    assert compare.render(result).endswith(summary)  # was "1 problem(s): FAIL"
    warned = compare.compare(base, [record()], missing="warn")
    assert warned.ok and compare.render(warned).endswith(
        "0 regression(s), 1 trial(s) missing from current (--missing warn: not a failure): PASS")
    both = compare.compare(base, [record(rmse=0.99)], missing="warn")
    assert not both.ok and compare.render(both).splitlines()[-1].startswith(
        "3 comparisons, 1 regression(s), 1 trial(s) missing")

    baseline, current = tmp_path / "base.jsonl", tmp_path / "cur.jsonl"
    for rec in base:
        store.append(baseline, rec)
    store.append(current, record())

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "bench", "compare", str(baseline),
                               str(current), *extra], capture_output=True, text=True)

    fail, warn = run(), run("--missing", "warn")
    assert fail.returncode == 1 and fail.stdout.strip().endswith(summary)
    assert "Missing from current:" in fail.stdout and "REGRESSION" not in fail.stdout
    assert warn.returncode == 0 and warn.stdout.strip().endswith("PASS")
    bad = run("--missing", "maybe")
    assert bad.returncode == 2 and "--missing" in bad.stderr
