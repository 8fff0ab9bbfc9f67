"""Executors end to end through the CLI, on real Dask clusters: equal records across
executors, a killed Dask worker, workers that cannot see the driver's files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.execution import store

pytest.importorskip("distributed")

PLUGINS = Path(__file__).parent / "plugins"
#: deterministic adapters of the smoke suite that need no numba compilation per process
ADAPTERS = ["baseline.GlobalMean", "baseline.UserMean", "baseline.ItemMean", "scipy.SVD"]


def bench(*args, cwd=None, env=None):
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS), **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def smoke(results: Path, *extra):
    picks = [a for name in ADAPTERS for a in ("--adapter", name)]
    res = bench("run", "--suite", "smoke", *picks, "--results", results, "--no-report", *extra)
    assert res.returncode == 0, res.stderr
    return {r["trial_id"]: r for r in store.read(store.run_file(results, "smoke"))}


def same_results(a: dict, b: dict, results_a: Path, results_b: Path) -> None:
    assert set(a) == set(b) and len(a) == len(ADAPTERS)
    for tid, rec in a.items():
        other = b[tid]
        assert rec["status"] == other["status"] == "ok"
        assert rec["metrics"] == other["metrics"], rec["adapter"]
        assert rec["split_fingerprint"] == other["split_fingerprint"]
        if rec.get("per_user_file"):
            with np.load(results_a / rec["per_user_file"]) as x, \
                 np.load(results_b / other["per_user_file"]) as y:
                assert set(x.files) == set(y.files)
                for key in x.files:
                    np.testing.assert_array_equal(x[key], y[key])


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    results = tmp_path_factory.mktemp("serial")
    return results, smoke(results)


def test_dask_local_cluster_equals_serial(serial, tmp_path):
    records = smoke(tmp_path, "--executor", "dask", "--jobs", "2")
    same_results(serial[1], records, serial[0], tmp_path)
    assert {r["env"]["concurrent_trials"] for r in records.values()} == {2}
    assert {r["env"]["concurrent_trials"] for r in serial[1].values()} == {1}


def test_local_jobs_2_equals_serial(serial, tmp_path):
    records = smoke(tmp_path, "--executor", "local", "--jobs", "2")
    same_results(serial[1], records, serial[0], tmp_path)
    assert {r["env"]["concurrent_trials"] for r in records.values()} == {2}


@pytest.fixture
def cluster(tmp_path):
    """`dask scheduler` and two `dask worker`s started by hand, each in its own empty
    directory with its own dataset cache and temp dir: none sees the driver's files."""
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS),
           "DASK_LOGGING__DISTRIBUTED": "error"}
    procs = []
    address_file = tmp_path / "scheduler.json"
    sched_dir = tmp_path / "scheduler"
    sched_dir.mkdir()
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
         "--dashboard-address", ":0", "--scheduler-file", address_file], cwd=sched_dir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    deadline = time.time() + 60
    while not address_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    import json

    address = json.loads(address_file.read_text())["address"]
    for i in range(2):
        home = tmp_path / f"worker{i}"
        (home / "tmp").mkdir(parents=True)
        wenv = {**env, "RECBENCH_CACHE_DIR": str(home / "cache"), "TMPDIR": str(home / "tmp")}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--dashboard-address", ":0", "--local-directory", home / "dask"], cwd=home, env=wenv,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    from distributed import Client

    client = Client(address, timeout="30s")
    client.wait_for_workers(2, timeout=120)
    yield address, client
    client.close()
    for p in reversed(procs):
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_killed_dask_worker_gives_one_failed_record_and_retry_completes(cluster, tmp_path):
    address, client = cluster
    driver = tmp_path / "driver"
    driver.mkdir()
    rng = np.random.default_rng(0)
    rows = [f"{u},{i},{r}" for u, i, r in zip(rng.integers(0, 60, 900), rng.integers(0, 40, 900),
                                               rng.integers(1, 6, 900), strict=True)]
    (driver / "ratings.csv").write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    (driver / "kill.toml").write_text(
        'description = "test"\n[[run]]\ndatasets = ["csv:ratings.csv?scale=1-5"]\n'
        'splits = [{ method = "kfold", n_folds = 4 }]\nadapters = ["fault.Mean"]\n'
        'params = { "fault.Mean" = { sleep = 4.0 } }\ntime_limit = 120\n')
    # relative paths: the data and the results exist only in the driver's directory
    cmd = ["run", "--suite", "kill.toml", "--results", "r", "--no-report", "--threads", "1",
           "--executor", "dask", "--scheduler", address]
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS)}
    run = subprocess.Popen([sys.executable, "-m", "bench", *cmd], cwd=driver, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.time() + 180
    while victim is None and time.time() < deadline:
        busy = {w: keys for w, keys in client.processing().items()
                if any(str(k).startswith("recbench-") for k in keys)}
        # both workers mid-trial: each has started one (its start marker is set), not only
        # been assigned it (a loaded host can take seconds to begin a task)
        started = {w for run in (client.get_metadata(["recbench"], None) or {}).values()
                   for w in run.values()}
        if len(busy) == 2 and started >= set(busy):
            victim = sorted(busy)[0]
        time.sleep(0.2)
    assert victim is not None, "the trials never ran on both workers"
    time.sleep(1.5)  # inside the trial's 4 s fit
    pids = client.run(os.getpid)
    os.kill(pids[victim], signal.SIGKILL)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    path = store.run_file(driver / "r", "kill")
    first = list(store.read(path))
    ids = [r["trial_id"] for r in first]
    assert len(ids) == len(set(ids)) == 4, err  # none recorded twice
    failed = [r for r in first if r["status"] == "failed"]
    assert len(failed) == 1 and "died" in failed[0]["error"], err
    assert sum(r["status"] == "ok" for r in first) == 3

    res = bench(*cmd, "--retry-failed", cwd=driver)
    assert res.returncode == 0, res.stderr
    assert "resuming: 3 of 4 trials already recorded" in res.stderr
    final = list(store.read(path))
    assert [r["trial_id"] for r in final] == ids + [failed[0]["trial_id"]]
    assert final[-1]["status"] == "ok"
    assert all(rec.get("per_user_file") and (driver / "r" / rec["per_user_file"]).is_file()
               for rec in final if rec["status"] == "ok")


def test_leaderboard_warns_about_mixed_concurrency():
    from bench.reporting.leaderboard.table import concurrency_note

    serial = {"fit_seconds": 1.0, "env": {"concurrent_trials": 1}}
    parallel = {"fit_seconds": 1.0, "env": {"concurrent_trials": 2}}
    assert concurrency_note([serial, {"fit_seconds": 2.0}]) == []  # old records: serial
    (note,) = concurrency_note([serial, parallel])
    assert "different concurrency" in note and "2 at once (1 trial)" in note


def test_longest_trials_first_by_past_records():
    from bench.execution.executors import longest_first, past_costs
    from bench.execution.trial import TrialSpec
    from bench.splitting.splits import SplitSpec

    specs = [TrialSpec(dataset="d", split=SplitSpec(method="random"), fold=0, adapter=a)
             for a in ("baseline.GlobalMean", "scipy.SVD", "baseline.Popularity")]
    past = [{"status": "ok", "adapter": "scipy.SVD", "dataset": "d", "fit_seconds": 3.0,
             "recommend_seconds": 1.0},
            {"status": "ok", "adapter": "baseline.Popularity", "dataset": "d",
             "fit_seconds": 0.5, "recommend_seconds": None},
            {"status": "failed", "adapter": "baseline.GlobalMean", "dataset": "d",
             "fit_seconds": 99.0}]
    assert past_costs(past) == {("scipy.SVD", "d"): 4.0, ("baseline.Popularity", "d"): 0.5}
    ordered = [s.adapter for s in longest_first(specs, past_costs(past))]
    assert ordered == ["scipy.SVD", "baseline.Popularity", "baseline.GlobalMean"]


def test_data_a_worker_cannot_fetch_is_shipped(table_entry):
    from bench.data import datasets
    from bench.execution.executors import needs_shipping

    table_entry("placed", "r.csv", "user,item,rating\n1,1,4\n1,2,5\n2,2,3\n")
    assert needs_shipping("placed", datasets.load("placed"))  # files placed by hand
    assert not needs_shipping("ml-100k", datasets.load("ml-100k"))  # checksummed download
    small = "synthetic:users=20,items=10,ratings=100,seed=0"
    assert needs_shipping(small, datasets.load(small))
