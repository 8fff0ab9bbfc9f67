"""Running at scale: admission control skips a trial that cannot fit a limit before it
starts; long stages report progress on the run's progress line."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli import main
from bench.execution import admission
from bench.execution.admission import DataShape
from bench.execution.trial import build_adapter

SUITE = """
[[run]]
datasets = ["synthetic:users=400,items=6000,ratings=20000,seed=0"]
splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]
adapters = ["baseline.Popularity", "surprise.KNNBasic"]
params = { "surprise.KNNBasic" = { user_based = false } }
metrics = { ks = [10], threshold = 4.0 }
time_limit = 120
"""


def test_item_knn_cost_is_items_squared_per_similarity_array():
    knn = build_adapter("surprise.KNNBasic", {"user_based": False, "sim_name": "cosine"}, 0, 1)
    shape = DataShape(n_users=200_948, n_items=84_432, n_ratings=25_600_000)
    # the figure: items^2 x 8 bytes = 57 GB for one similarity matrix at ML-32M
    assert knn.estimate_bytes(shape) == 5 * 84_432**2 * 8
    assert 84_432**2 * 8 / 1e9 == __import__("pytest").approx(57.0, abs=0.1)
    user_knn = build_adapter("surprise.KNNBasic", {"user_based": True, "sim_name": "msd"}, 0, 1)
    assert user_knn.estimate_bytes(shape) == 3 * 200_948**2 * 8
    pop = build_adapter("baseline.Popularity", {}, 0, 1)
    assert pop.estimate_bytes(shape) is None
    est = admission.estimate(knn, shape)
    reason = admission.refusal(est, 24 * 2**30, 900.0, "the memory available on this host")
    assert reason.startswith("not admitted: estimated peak memory 267.")
    assert "exceeds the memory available on this host of 24.0 GiB" in reason
    assert admission.refusal(admission.estimate(pop, shape), 24 * 2**30, 900.0) is None


def test_time_estimate_scales_seconds_per_train_rating_from_comparable_records():
    pop = build_adapter("baseline.Popularity", {}, 0, 1)
    params = {k: v for k, v in pop.get_params().items() if k not in ("seed", "threads")}
    rec = {"status": "ok", "adapter": "baseline.Popularity", "stage": "test", "params": params,
           "n_train": 1_000_000, "fit_seconds": 2.0, "recommend_seconds": 8.0,
           "prepare_seconds": 0.0, "predict_seconds": None}
    other_params = {**rec, "params": {**params, "unused": 1}}
    tiny = {**rec, "n_train": 100, "fit_seconds": 50.0}  # too small to extrapolate from
    shape = DataShape(1000, 1000, 32_000_000)
    est = admission.estimate(pop, shape, [rec, other_params, tiny, {**rec, "status": "failed"}])
    assert est.seconds == __import__("pytest").approx(320.0)  # 10 s per 1M ratings x 32
    assert est.seconds_basis.startswith("1 earlier record")
    assert admission.refusal(est, None, 900.0) is None
    reason = admission.refusal(est, None, 300.0)
    assert reason == ("not admitted: estimated at least 320 s from 1 earlier record(s) of the "
                      "same adapter and parameters scaled to this train size, over the time "
                      "limit of 300 s")
    assert admission.estimate(pop, shape, [tiny]).seconds is None


def test_run_skips_a_trial_over_the_memory_limit_before_it_starts(tmp_path: Path, capsys):
    suite = tmp_path / "adm.toml"
    suite.write_text(SUITE)
    code = main(["run", "--suite", str(suite), "--results", str(tmp_path / "r"),
                 "--memory-limit-mb", "1024", "--no-report"])
    assert code == 0
    err = capsys.readouterr().err
    assert "1 trial(s) on synthetic:users=400,items=6000,ratings=20000,seed=0 not admitted" in err
    recs = {r["adapter"]: r for r in map(json.loads, (tmp_path / "r/runs/adm.jsonl").open())}
    knn = recs["surprise.KNNBasic"]
    assert knn["status"] == "skipped"
    assert knn["error"].startswith("not admitted: estimated peak memory ")
    assert knn["error"].endswith("exceeds the limit (--memory-limit-mb) of 1.0 GiB")
    assert knn.get("fit_seconds") is None  # never started
    assert recs["baseline.Popularity"]["status"] == "ok"


def test_long_stages_report_progress_on_the_run_line(tmp_path: Path, capsys, monkeypatch):
    from bench.execution import runner

    # stage changes are always reported (within a stage at most every progress.INTERVAL
    # s); the run line shows them once a trial has run PROGRESS_AFTER_SECONDS: here at once
    monkeypatch.setattr(runner, "PROGRESS_AFTER_SECONDS", 0.0)
    suite = tmp_path / "prog.toml"
    suite.write_text(SUITE.replace('"baseline.Popularity", "surprise.KNNBasic"',
                                   '"baseline.Popularity"'))
    assert main(["run", "--suite", str(suite), "--results", str(tmp_path / "r"),
                 "--no-report"]) == 0
    err = capsys.readouterr().err
    for stage in ("loading the dataset", "splitting", "fitting on 16,000 ratings",
                  "evaluating"):
        assert f"baseline.Popularity {SUITE.split(chr(34))[1]} f0: {stage}" in err


def test_a_progress_line_and_the_answer_in_one_write_are_both_read(tmp_path: Path):
    """The worker's progress lines and its answer may reach the driver in one read: the
    answer must not wait in a buffer while the driver waits on the pipe (a hang until the
    time limit, seen on a loaded machine)."""
    import sys

    from bench.execution.executors import Worker

    script = ("import sys; sys.stdin.readline(); "
              "sys.stdout.write('{\"progress\": \"a\"}\\n{\"progress\": \"b\"}\\n{\"ok\": 1}\\n'); "
              "sys.stdout.flush(); sys.stdin.readline()")
    worker = Worker(tmp_path / "w.log", 1, command=[sys.executable, "-c", script])
    seen: list[str] = []
    try:
        answer, problem = worker.run({"spec": {}}, timeout=20, on_progress=seen.append)
    finally:
        worker.kill()
        worker.close()
    assert (answer, problem, seen) == ({"ok": 1}, None, ["a", "b"])


def test_a_suite_naming_an_adapter_of_a_missing_extra_skips_it(tmp_path: Path):
    """README's `run --suite all` without the optional extras: adapters the suite names
    whose library cannot be imported are left out with one line, unknown names stay errors.
    (In a fresh process: the adapter registry is discovered once per process.)"""
    import os
    import subprocess
    import sys

    (tmp_path / "needsfoo.py").write_text('raise ImportError("needsfoo needs libfoo")\n')
    code = (
        "from bench.execution import registry, suites\n"
        "from bench.errors import UserError\n"
        "assert registry.unavailable_reason('needsfoo.Model') == 'needsfoo needs libfoo'\n"
        "names = suites.match_adapters(['needsfoo.Model', 'baseline.Popularity'], [],\n"
        "                              registry.available())\n"
        "assert names == ['baseline.Popularity'], names\n"
        "try:\n"
        "    suites.match_adapters(['nosuch.Model'], [], registry.available())\n"
        "except UserError as exc:\n"
        "    assert \"unknown adapter 'nosuch.Model'\" in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no error for an unknown adapter')\n"
    )
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
