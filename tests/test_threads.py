"""Thread counts are set in one module (bench/execution/threads.py), once per trial, and reach the
adapter's numba kernels and BLAS."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from threadpoolctl import threadpool_info

from bench.execution import store, threads

ROOT = Path(__file__).parent.parent
PROBES = Path(__file__).parent / "probes"
#: calls that change a thread count; only bench/execution/threads.py makes them
SETTERS = {"set_num_threads", "threadpool_limits", "ThreadpoolController"}


def blas_counts() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_only_bench_threads_sets_thread_counts() -> None:
    offenders = []
    for path in sorted([*(ROOT / "bench").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]):
        if path == ROOT / "bench" / "execution" / "threads.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, ast.Name):
                names.append(node.id)
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names += [alias.name.rsplit(".", 1)[-1] for alias in node.names]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                          for n in names if n in SETTERS]
    assert offenders == []


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs a numba pool of 2")
def test_apply_sets_numba_and_blas_and_limited_restores_them() -> None:
    previous = numba.get_num_threads()
    try:
        assert threads.apply(1) == 1
        assert numba.get_num_threads() == 1 and blas_counts() == {1}
        with threads.limited(2) as used:
            assert used == 2 and numba.get_num_threads() == 2 and blas_counts() == {2}
            with threads.blas_limited(1):
                assert blas_counts() == {1} and numba.get_num_threads() == 2
            assert blas_counts() == {2}
        assert numba.get_num_threads() == 1 and blas_counts() == {1}
        with threads.limited(10**6, blas=False) as used:  # capped at numba's pool
            assert used == numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    finally:
        threads.apply(previous)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores")
def test_each_trial_runs_its_adapter_on_its_own_thread_count(tmp_path: Path) -> None:
    # One worker runs both trials (its pools sized for 2): the 1-thread trial, its first,
    # must fit under one numba thread and one thread in every BLAS, also in the BLAS its
    # adapter's import loads (scipy's), and the 2-thread trial under two.
    suite = tmp_path / "threads.toml"
    suite.write_text(
        'description = "threads"\n[[run]]\n'
        'datasets = ["synthetic:users=120,items=80,ratings=2000,seed=3"]\n'
        'splits = [{ method = "random", test_fraction = 0.2 }]\n'
        'adapters = ["probe.Threads"]\nthreads = [1, 2]\n'
    )
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PROBES)}
    res = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", suite, "--results", tmp_path / "r",
         "--no-report"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    recs = {r["threads"]: r for r in store.read(store.run_file(tmp_path / "r", "threads"))}
    assert sorted(recs) == [1, 2]
    for n, rec in recs.items():
        assert rec["status"] == "ok", rec["error"]
        assert rec["fitted"] == {"numba": n, "blas": [n]}, json.dumps(rec["fitted"])
        assert rec["env"]["threads"]["numba"] == n


def test_a_one_thread_trial_records_every_pool_at_one(tmp_path: Path) -> None:
    # A worker starts with its pools sized for the run's largest count (here 2, as in a run
    # that also has 2-thread trials); a 1-thread trial must still run, and record, every
    # BLAS / OpenMP pool at 1, also the runtimes loaded after the count was first applied.
    from bench.execution.executors import Worker
    from bench.execution.trial import TrialSpec
    from bench.splitting.splits import SplitSpec

    spec = TrialSpec(
        dataset="synthetic:users=150,items=90,ratings=3000,seed=5",
        split=SplitSpec.from_dict({"method": "random", "test_fraction": 0.2}),
        fold=0, adapter="baseline.Bias", threads=1,
    )
    worker = Worker(tmp_path / "worker.log", max_threads=2)
    try:
        record, reason = worker.run({"spec": spec.to_dict(), "results_dir": None}, timeout=300)
    finally:
        worker.close()
    assert reason is None and record is not None and record["status"] == "ok", record
    pools = record["env"]["threads"]["pools"]
    assert pools and all(p.endswith("=1") for p in pools), pools
    assert record["env"]["threads"]["numba"] == 1
