"""The runner end to end through the CLI: failure isolation, resumption, durability."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.execution import store

PLUGINS = Path(__file__).parent / "plugins"
DATA = "synthetic:users=120,items=80,ratings=2000,seed=3"


def write_suite(path: Path, adapters, split='{ method = "random", test_fraction = 0.2 }',
                extra="", time_limit=60) -> Path:
    path.write_text(
        f'description = "test"\n[[run]]\ndatasets = ["{DATA}"]\nsplits = [{split}]\n'
        f"adapters = {json.dumps(adapters)}\ntime_limit = {time_limit}\n{extra}\n"
    )
    return path


def bench(*args, cwd=None, **kw):
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS)}
    return subprocess.run(
        [sys.executable, "-m", "bench", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, **kw,
    )


def records(results: Path, suite: str) -> list[dict]:
    return list(store.read(store.run_file(results, suite)))


def test_failures_are_recorded_and_the_suite_goes_on(tmp_path):
    suite = write_suite(
        tmp_path / "faults.toml",
        ["fault.Raise", "fault.Crash", "fault.Hang", "fault.Hog", "fault.Mean"],
        time_limit=8,
    )
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--threads", "1",
                "--memory-limit-mb", "1500")
    assert res.returncode == 1, res.stderr
    by_adapter = {r["adapter"]: r for r in records(tmp_path / "r", "faults")}
    assert by_adapter["fault.Raise"]["status"] == "failed"
    assert "planted failure" in by_adapter["fault.Raise"]["error"]
    assert by_adapter["fault.Crash"]["status"] == "failed"
    assert "SIGSEGV" in by_adapter["fault.Crash"]["error"]
    assert by_adapter["fault.Hang"]["status"] == "timeout"
    assert by_adapter["fault.Hog"]["status"] == "failed"
    assert "MemoryError" in by_adapter["fault.Hog"]["error"]
    ok = by_adapter["fault.Mean"]
    assert ok["status"] == "ok" and ok["metrics"]["rmse"] > 0
    assert "4 of 5 trials failed" in res.stderr
    assert (tmp_path / "r" / "LEADERBOARD.md").exists()


def test_the_time_limit_counts_from_the_warm_up_not_the_start_up(tmp_path):
    # A worker that takes longer to start (imports, building the adapter, data) than the
    # whole limit, as on a loaded machine, then fits at once: ok, not timeout; a fit that
    # outlasts the limit is still a timeout.  (The faults test above once recorded fault.Raise as a
    # timeout under load: its 8 s limit covered the imports.)
    suite = write_suite(
        tmp_path / "start.toml",
        ["fault.SlowStart", "fault.Hang"],
        time_limit=2,
        extra='params = { "fault.SlowStart" = { startup = 4.0 } }',
    )
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--threads", "1",
                "--time-limit", "2", "--no-report")
    by_adapter = {r["adapter"]: r for r in records(tmp_path / "r", "start")}
    assert by_adapter["fault.SlowStart"]["status"] == "ok", by_adapter["fault.SlowStart"]
    assert by_adapter["fault.Hang"]["status"] == "timeout"
    assert res.returncode == 1, res.stderr


def test_killed_run_resumes_without_redoing_trials(tmp_path):
    suite = write_suite(
        tmp_path / "slow.toml",
        ["fault.Mean"],
        split='{ method = "kfold", n_folds = 5 }',
        extra='params = { "fault.Mean" = { sleep = 0.6 } }',
    )
    results = tmp_path / "r"
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results", str(results),
         "--threads", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 120
    while len(records(results, "slow")) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker, mid-suite
    proc.wait()
    first = records(results, "slow")
    assert 2 <= len(first) < 5
    # A writer killed mid-line leaves a partial line: the store must survive it.
    with open(store.run_file(results, "slow"), "a") as fh:
        fh.write('{"trial_id": "partial", "sta')
    res = bench("run", "--suite", suite, "--results", results, "--threads", "1")
    assert res.returncode == 0, res.stderr
    assert f"resuming: {len(first)} of 5 trials already recorded" in res.stderr
    final = records(results, "slow")
    ids = [r["trial_id"] for r in final]
    assert len(ids) == len(set(ids)) == 5
    assert ids[: len(first)] == [r["trial_id"] for r in first]
    assert all(r["status"] == "ok" for r in final)


def test_concurrent_runs_share_a_results_directory(tmp_path):
    results = tmp_path / "r"
    suite = write_suite(tmp_path / "both.toml", ["fault.Mean"], split='{ method = "kfold" }')
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS)}
    cmd = [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results", str(results),
           "--threads", "1", "--no-report"]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    lines = store.run_file(results, "both").read_text().splitlines()
    assert all(json.loads(line)["status"] == "ok" for line in lines)
    # each trial claimed by one run: recorded once, not once per run
    assert len(lines) == len({json.loads(line)["trial_id"] for line in lines}) == 5


def test_record_layout_is_the_public_interface(tmp_path):
    suite = write_suite(tmp_path / "one.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    (rec,) = records(tmp_path / "r", "one")
    for key in ("schema_version", "suite", "dataset", "split", "fold", "adapter", "params",
                "seed", "status", "error", "metrics", "fit_seconds", "predict_seconds",
                "recommend_seconds", "peak_rss_mb", "env", "threads"):
        assert key in rec, key
    assert rec["schema_version"] == 1
    assert {"numpy", "scipy"} <= set(rec["env"]["versions"])
    assert rec["env"]["threads"]["numba"] >= 1
    assert rec["peak_rss_mb"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--suite", "nope"], "unknown suite 'nope'"),
        (["run", "--suite", "smoke", "--adapter", "nope.Model"], "unknown adapter 'nope.Model'"),
        (["run", "--suite", "smoke", "--dataset", "nope"], "unknown dataset"),
        (["run", "--suite", "smoke", "--threads", "0"], "--threads must be between 1 and"),
        (["run"], "--suite"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, args, message):
    res = bench(*args, "--results", tmp_path / "r") if args[0] == "run" else bench(*args)
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "r").exists()


def test_suite_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('description = "x"\n[[run]\n')
    res = bench("run", "--suite", bad, "--results", tmp_path / "r")
    assert res.returncode == 2
    assert str(bad) in res.stderr and "line 2" in res.stderr


def test_malformed_csv_is_rejected_before_anything_is_written(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("user,item,rating\n1,2,4\n1,3,abc\n")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    res = bench("run", "--suite", suite, "--dataset", f"csv:{csv}", "--results", tmp_path / "r")
    assert res.returncode == 2
    assert str(csv) in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_report_rebuilds_the_leaderboard_from_records_only(tmp_path):
    suite = write_suite(tmp_path / "one.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    board = tmp_path / "r" / "LEADERBOARD.md"
    board.unlink()
    res = bench("report", "--results", tmp_path / "r")
    assert res.returncode == 0, res.stderr
    text = board.read_text()
    assert "`fault.Mean`" in text and "RMSE" in text
    assert bench("report", "--results", tmp_path / "empty").returncode == 2


@pytest.mark.parametrize(
    ("rows", "split", "message"),
    [
        ("user,item,rating\n1,1,4\n1,2,3\n1,3,5\n", '{ method = "random" }', "1 user(s)"),
        ("user,item,rating\n1,1,4\n2,2,3\n3,1,5\n", '{ method = "kfold", n_folds = 5 }',
         "cannot be split into 5 folds"),
        ("user,item,rating\n1,1,4\n2,2,3\n3,1,5\n", '{ method = "temporal" }', "needs timestamps"),
    ],
)
def test_data_the_protocol_cannot_use_is_rejected_up_front(tmp_path, rows, split, message):
    csv = tmp_path / "data.csv"
    csv.write_text(rows)
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"], split=split)
    res = bench("run", "--suite", suite, "--dataset", f"csv:{csv}", "--results", tmp_path / "r")
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('params = { "fault.Mean" = { nope = 1 } }', "unknown parameter(s) nope"),
        ('params = { "fault.Mean" = { sleep = "long" } }', "wrong type"),
        ('metrics = { ks = [10], bogus = 1 }', "unknown metric option(s): bogus"),
        ('metrics = { ks = [0] }', "positive integers"),
    ],
)
def test_bad_parameters_and_metrics_exit_2(tmp_path, extra, message):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"], extra=extra)
    res = bench("run", "--suite", suite, "--results", tmp_path / "r")
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


def test_the_python_api_runs_a_suite_or_trial_specs_as_the_cli_does(tmp_path):
    import bench
    from bench.execution import suites

    suite = write_suite(tmp_path / "api.toml", ["baseline.Bias", "baseline.Popularity"])
    recs = bench.run(suite, tmp_path / "r", threads=1)
    assert sorted(r["adapter"] for r in recs) == ["baseline.Bias", "baseline.Popularity"]
    assert all(r["status"] == "ok" for r in recs)
    assert recs == records(tmp_path / "r", "api")
    assert not (tmp_path / "r" / "LEADERBOARD.md").exists()  # report=False by default
    assert bench.run(suite, tmp_path / "r", threads=1) == recs  # resumed: nothing re-run
    assert len(records(tmp_path / "r", "api")) == 2

    specs = suites.expand(suites.load(str(suite)), threads=1)
    assert all(isinstance(s, bench.TrialSpec) for s in specs)
    by_specs = bench.run(specs, tmp_path / "r2", report=True)
    assert [r["trial_id"] for r in by_specs] == [r["trial_id"] for r in recs]
    assert [r["metrics"] for r in by_specs] == [r["metrics"] for r in recs]
    assert (tmp_path / "r2" / "LEADERBOARD.md").is_file()
