"""Dask faults of issue 23 (items 9, 10) through the real CLI, on a scheduler and worker
started by hand: a killed scheduler, a malformed address, an HTTP server's port."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_integrity import one_line
from test_runner import PLUGINS, bench, records, write_suite

# ---------------------------------------------------------------- 9, 10. Dask faults


def start(argv: list, cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait()


@pytest.fixture
def dask_cluster(tmp_path):
    """A `dask scheduler` and one one-thread `dask worker` started by hand."""
    pytest.importorskip("distributed")
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS),
           "DASK_LOGGING__DISTRIBUTED": "error"}
    address_file = tmp_path / "scheduler.json"
    (tmp_path / "sched").mkdir()
    (tmp_path / "worker").mkdir()
    procs = [start(["distributed.cli.dask_scheduler", "--port", "0", "--dashboard-address",
                    ":0", "--scheduler-file", address_file], tmp_path / "sched", env)]
    try:
        deadline = time.time() + 60
        while not address_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        procs.append(start(["distributed.cli.dask_worker", address, "--nthreads", "1",
                            "--dashboard-address", ":0", "--local-directory",
                            tmp_path / "worker" / "dask"], tmp_path / "worker", env))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=120)
        yield address, procs[0]
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_a_killed_dask_scheduler_stops_the_run_with_exit_3_and_it_resumes(tmp_path,
                                                                          dask_cluster):
    address, scheduler = dask_cluster
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"],
                        split='{ method = "kfold", n_folds = 5 }',
                        extra='params = { "fault.Mean" = { sleep = 2 } }')
    results = tmp_path / "r"
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS)}
    driver = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results", str(results),
         "--executor", "dask", "--scheduler", address, "--no-report"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.time() + 120
        while not records(results, "s") and time.time() < deadline and driver.poll() is None:
            time.sleep(0.1)
        assert records(results, "s"), "no trial recorded"
        os.killpg(scheduler.pid, 9)
        _, err = driver.communicate(timeout=90)  # no hang
    finally:
        stop(driver)
    assert driver.returncode == 3, err
    assert "Traceback" not in err, err
    assert "error: lost the Dask scheduler at" in err.strip().splitlines()[-1]
    recorded = records(results, "s")
    assert 1 <= len(recorded) < 5 and {r["status"] for r in recorded} == {"ok"}
    res = bench("run", "--suite", suite, "--results", results, "--no-report")
    assert res.returncode == 0, res.stderr
    assert len(records(results, "s")) == 5 and "already recorded" in res.stderr


@pytest.mark.parametrize("address", ["foo://bar:12", "not an address", "tcp://host"])
def test_a_malformed_scheduler_address_is_one_line(tmp_path, address):
    pytest.importorskip("distributed")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--executor", "dask",
                "--scheduler", address)
    assert res.returncode == 2, res.stderr
    assert "is not a Dask scheduler address; give tcp://host:port" in one_line(res)
    assert not (tmp_path / "r").exists()


def test_a_scheduler_address_of_an_http_server_is_refused_within_the_timeout(tmp_path):
    pytest.importorskip("distributed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    http = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
        t0 = time.monotonic()
        res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--executor", "dask",
                    "--scheduler", f"tcp://127.0.0.1:{port}")
        assert time.monotonic() - t0 < 90
    finally:
        stop(http)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in last
    assert "Traceback" not in res.stderr
    assert records(tmp_path / "r", "s") == []
