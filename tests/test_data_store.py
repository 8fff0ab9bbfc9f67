"""The column data store (bench.data.colstore, bench.execution.datastore): the dataset and
its splits written once by the driver, mapped by every trial; records equal to loading the
data in each worker (serial, local --jobs 2, a Dask LocalCluster, a hand-started Dask
cluster), nothing scattered when the workers reach the store, a damaged column file is one
line and exit 2 with nothing recorded, and a store at an fsspec URL is copied and verified."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.execution import store

DATA = "synthetic:users=300,items=120,ratings=6000,seed=1"
SUITE = f"""description = "data store test"
[[run]]
datasets = ["{DATA}"]
splits = [{{ method = "random", test_fraction = 0.2, seed = 0 }},
          {{ method = "kfold", n_folds = 2, seed = 0 }}]
adapters = ["baseline.Popularity", "baseline.ItemMean"]
metrics = {{ ks = [5, 10] }}
time_limit = 300
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def bench(tmp: Path, cache: Path, *args, env=None):
    (tmp / "store.toml").write_text(SUITE)
    env = {**os.environ, "RECBENCH_CACHE_DIR": str(cache), "DASK_LOGGING__DISTRIBUTED": "error",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", "run", "--suite", "store.toml",
                           "--results", "r", "--no-report", "--threads", "1", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=600)


def records(tmp: Path) -> dict:
    return {r["trial_id"]: r for r in store.read(tmp / "r" / "runs" / "store.jsonl")}


def run(tmp: Path, cache: Path, *args, env=None) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    res = bench(tmp, cache, *args, env=env)
    assert res.returncode == 0, res.stderr
    return records(tmp)


def assert_same(a: dict, b: dict, dir_a: Path, dir_b: Path) -> None:
    assert set(a) == set(b) and len(a) == 6  # 2 adapters x (1 + 2 folds)
    for tid, rec in a.items():
        other = b[tid]
        assert rec["status"] == other["status"] == "ok", (rec["error"], other["error"])
        assert rec["metrics"] == other["metrics"], rec["adapter"]
        assert rec["split_fingerprint"] == other["split_fingerprint"]
        assert rec["dataset_fingerprint"] == other["dataset_fingerprint"]
        with np.load(dir_a / "r" / rec["per_user_file"]) as x, \
             np.load(dir_b / "r" / other["per_user_file"]) as y:
            assert set(x.files) == set(y.files)
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, cache):
    """The old way: no store, each worker loads the dataset and rebuilds the split."""
    tmp = tmp_path_factory.mktemp("off")
    return tmp, run(tmp, cache, env={"RECBENCH_DATA_STORE": "off"})


def test_records_equal_with_and_without_the_store_on_every_executor(loaded, cache, tmp_path):
    off_dir, off = loaded
    assert {r["data_delivery"]["via"] for r in off.values()} == {"loaded"}
    for name, args in (("serial", ()), ("local", ("--executor", "local", "--jobs", "2")),
                       ("dask", ("--executor", "dask", "--jobs", "2"))):
        recs = run(tmp_path / name, cache, *args)
        assert_same(off, recs, off_dir, tmp_path / name)
        deliveries = [r["data_delivery"] for r in recs.values()]
        assert {d["via"] for d in deliveries} == {"store"}, name
        assert {d["bytes_scattered"] for d in deliveries} == {0}, name
        where = Path(deliveries[0]["store"])
        assert where.parent == cache / "store" and (where / "manifest.json").is_file()
        # the holdout's fold and both k-fold folds: rows in files of their own
        assert len(list(where.glob("split-*-fold*-train-users.npy"))) == 3
        assert all(r["schema_minor"] >= 2 for r in recs.values())


def test_a_damaged_column_file_is_one_line_exit_2_and_nothing_recorded(loaded, cache, tmp_path):
    run(tmp_path / "first", cache)
    manifest = next((cache / "store").glob("*/manifest.json"))
    column = manifest.parent / "items.npy"
    data = bytearray(column.read_bytes())
    data[-10] ^= 0xFF  # same size, one byte changed
    column.write_bytes(bytes(data))
    try:
        (tmp_path / "second").mkdir()
        res = bench(tmp_path / "second", cache)
        assert res.returncode == 2, res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert "items.npy" in last and "checksum" in last and "Traceback" not in res.stderr
        run_file = tmp_path / "second" / "r" / "runs" / "store.jsonl"
        assert not run_file.exists() or not list(store.read(run_file))
    finally:
        data[-10] ^= 0xFF
        column.write_bytes(bytes(data))


def test_a_column_damaged_under_a_reader_is_store_corrupt(tmp_path, monkeypatch):
    """A trial's own check (once per process, again when the file changes)."""
    from bench.data import colstore, datasets
    from bench.splitting.splits import SplitSpec, assign

    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RECBENCH_DATA_STORE", raising=False)
    from bench.execution import datastore

    ds = datasets.load(DATA)
    spec = SplitSpec()
    local, where = datastore.publish(ds, ds.fingerprint(), {spec: assign(ds.ratings, spec)})
    opened, seconds = colstore.open_dataset(where, DATA)
    assert opened.fingerprint() == ds.fingerprint() and seconds > 0
    np.testing.assert_array_equal(opened.ratings.ratings, ds.ratings.ratings)
    assert colstore.open_dataset(where, DATA)[1] == 0.0  # verified once per process
    path = Path(local) / "ratings.npy"
    with open(path, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x7f\x7f\x7f\x7f")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(colstore.StoreCorrupt, match="ratings.npy fails its checksum"):
        colstore.open_dataset(where, DATA)
    with open(path, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(colstore.StoreCorrupt, match="bytes, its manifest says"):
        colstore.open_dataset(where, DATA)


def test_fold_rows_are_their_own_read_only_files_equal_to_the_gathered_rows(
        tmp_path, monkeypatch):
    """A split of few folds: each fold's train and test rows are mapped read-only from
    files of their own, bit-identical to gathering them; a split of many folds is not."""
    from bench.data import colstore, datasets
    from bench.splitting.splits import SplitSpec, assign, fold_rows, split_key

    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RECBENCH_DATA_STORE", raising=False)
    from bench.execution import datastore

    ds = datasets.load(DATA)
    few, many = SplitSpec("kfold", n_folds=2), SplitSpec("kfold", n_folds=10)
    assignments = {few: assign(ds.ratings, few), many: assign(ds.ratings, many)}
    local, where = datastore.publish(ds, ds.fingerprint(), assignments,
                                     {few: {0, 1}, many: {0}})
    datastore.use_store(DATA, where)
    for f in (0, 1):
        stored = datastore.fold_ratings(DATA, ds, few, f)
        rows = fold_rows(assignments[few], f)
        for got, want in zip(stored, (ds.ratings.take(rows.train_rows),
                                      ds.ratings.take(rows.test_rows)), strict=True):
            for column in colstore.COLUMNS:
                a, b = getattr(got, column), getattr(want, column)
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), column
                assert not a.flags.writeable, column
            assert (got.n_users, got.n_items) == (want.n_users, want.n_items)
    assert datastore.fold_ratings(DATA, ds, many, 0) is None  # 10 folds: not stored
    assert not list(Path(local).glob(f"split-{split_key(ds.fingerprint(), many)}-fold*"))
    monkeypatch.setenv(datastore.FOLD_ROWS_ENV, "off")
    assert datastore.fold_ratings(DATA, ds, few, 0) is None


def test_a_store_at_an_fsspec_url_is_copied_once_and_verified(tmp_path, monkeypatch):
    import fsspec

    from bench.data import colstore, datasets
    from bench.splitting.splits import SplitSpec, assign, split_key

    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "driver"))
    monkeypatch.setenv("RECBENCH_DATA_STORE", "memory://recbench-test/store")
    from bench.execution import datastore

    ds = datasets.load(DATA)
    spec = SplitSpec()
    fold_of_row = assign(ds.ratings, spec)
    _, where = datastore.publish(ds, ds.fingerprint(), {spec: fold_of_row})
    assert where.startswith("memory://recbench-test/store/")
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "worker"))  # another host's cache
    opened, _ = colstore.open_dataset(where, DATA)
    assert opened.fingerprint() == ds.fingerprint()
    assert str(opened.ratings.users.filename).startswith(str(tmp_path / "worker"))
    stored, _ = colstore.open_array(where, f"split-{split_key(ds.fingerprint(), spec)}")
    np.testing.assert_array_equal(stored, fold_of_row)
    assert colstore.manifest_digest(where) == colstore.manifest_digest(
        str(tmp_path / "driver" / "store" / Path(where).name))
    fs = fsspec.filesystem("memory")  # the remote copy damaged: a new host refuses it
    remote = where.split("://", 1)[1] + "/users.npy"
    data = bytearray(fs.cat_file(remote))
    data[-1] ^= 1
    fs.pipe_file(remote, bytes(data))
    monkeypatch.setenv("RECBENCH_CACHE_DIR", str(tmp_path / "worker2"))
    with pytest.raises(colstore.StoreCorrupt, match="users.npy fails its checksum"):
        colstore.open_dataset(where, DATA)
    fs.rm("/recbench-test", recursive=True)


@pytest.fixture
def hand_cluster(tmp_path):
    """`dask scheduler` and two `dask worker`s started by hand, each with its own cache."""
    pytest.importorskip("distributed")
    env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "error"}
    address_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
         "--dashboard-address", ":0", "--scheduler-file", address_file], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    deadline = time.time() + 60
    while not address_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    address = json.loads(address_file.read_text())["address"]
    for i in range(2):
        home = tmp_path / f"worker{i}"
        home.mkdir()
        wenv = {**env, "RECBENCH_CACHE_DIR": str(home / "cache")}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--dashboard-address", ":0", "--local-directory", home / "dask"], cwd=home,
            env=wenv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for p in reversed(procs):
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_hand_started_dask_workers_read_a_shared_store_and_nothing_is_scattered(
        loaded, hand_cluster, tmp_path):
    off_dir, off = loaded
    shared = tmp_path / "shared"  # a directory every worker reaches, given by the user
    env = {"RECBENCH_DATA_STORE": str(shared)}
    recs = run(tmp_path / "dask", tmp_path / "driver-cache", "--executor", "dask",
               "--scheduler", hand_cluster, env=env)
    assert_same(off, recs, off_dir, tmp_path / "dask")
    deliveries = [r["data_delivery"] for r in recs.values()]
    assert {d["bytes_scattered"] for d in deliveries} == {0}
    assert {Path(d["store"]).parent for d in deliveries} == {shared}
    # without a store the synthetic data is scattered, as before
    scattered = run(tmp_path / "dask-off", tmp_path / "driver-cache", "--executor", "dask",
                    "--scheduler", hand_cluster, env={"RECBENCH_DATA_STORE": "off"})
    assert_same(off, scattered, off_dir, tmp_path / "dask-off")
    assert all(r["data_delivery"]["via"] == "scattered" and r["data_delivery"]["bytes_scattered"]
               > 0 for r in scattered.values())
