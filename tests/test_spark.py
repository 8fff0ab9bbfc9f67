"""Spark MLlib ALS adapters on a real local Spark session and ML-100k slices.

Skipped, with the reason, when pyspark or Java is missing here (``pip install -e
'.[spark]'``; Java 17).  Each test starts one JVM (a few seconds) and fits on a slice of
ML-100k so the file stays well under a minute on two cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    from recbench_adapters import spark as spark_adapters
except ImportError as exc:  # pyspark not installed, or no Java
    pytest.skip(f"Spark adapters unavailable here: {exc}", allow_module_level=True)

from pyspark import SparkContext

from bench.data.model import Ratings, TrainSet

SLICE_USERS = 300  # users 0..299 of ML-100k: about 30k ratings


def split(ratings: Ratings, seed: int = 0) -> tuple[Ratings, Ratings]:
    test = np.random.default_rng(seed).random(len(ratings)) < 0.2
    return ratings.take(np.flatnonzero(~test)), ratings.take(np.flatnonzero(test))


@pytest.fixture(scope="module")
def ml100k_slice(ml100k) -> tuple[Ratings, Ratings]:
    rows = np.flatnonzero(ml100k.ratings.users < SLICE_USERS)
    return split(ml100k.ratings.take(rows))


def java_children() -> list[int]:
    """Pids of java processes whose parent is this process."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and cmd.endswith(b"java"):
            out.append(int(proc.name))
    return out


def assert_ranks_like_spark(model, users: np.ndarray, k: int = 10) -> None:
    """Spark's own top-k (``recommendForUserSubset``, train items included) are the top-k of
    the adapter's numpy scores, in the same order, with the same scores."""
    session = model.spark_.session
    frame = session.createDataFrame([(int(u),) for u in users], ["user"])
    rows = model.model_.recommendForUserSubset(frame, k).collect()
    assert sorted(r["user"] for r in rows) == sorted(users.tolist())
    for row in rows:
        items = np.array([rec["item"] for rec in row["recommendations"]])
        theirs = np.array([rec["rating"] for rec in row["recommendations"]], dtype=np.float32)
        ours = model.score(np.array([row["user"]]))[0]
        np.testing.assert_allclose(ours[items], theirs, rtol=1e-4, atol=1e-5)
        kth = np.sort(ours)[-k]
        assert np.all(ours[items] >= kth - 1e-5)  # Spark's k best are our k best (up to ties)
        assert np.all(np.diff(ours[items]) <= 1e-5)  # in the same order


def test_explicit_scores_rank_like_spark_and_close_leaves_no_jvm(ml100k, ml100k_slice):
    train, test = ml100k_slice
    model = spark_adapters.ALS(rank=10, maxIter=10, regParam=0.05, seed=0, threads=1)
    model.stop_after_fit = False  # keep the session to ask Spark itself
    model.fit(TrainSet(train, ml100k.rating_scale))
    try:
        users = np.random.default_rng(1).choice(np.unique(train.users), 15, replace=False)
        assert_ranks_like_spark(model, users)
        # Rating estimates equal Spark's transform for pairs it knows.
        pairs = [(int(u), int(i)) for u, i in zip(test.users[:300], test.items[:300],
                                                    strict=True)]  # fmt: skip
        frame = model.spark_.session.createDataFrame(pairs, ["user", "item"])
        got = {(r["user"], r["item"]): r["prediction"]
               for r in model.model_.transform(frame).collect()}  # fmt: skip
        ours = model.predict(test.users[:300], test.items[:300])
        theirs = np.array([got[p] for p in pairs], dtype=np.float64)
        known = ~np.isnan(theirs)
        assert known.sum() > 250
        np.testing.assert_allclose(ours[known], theirs[known], rtol=1e-4, atol=1e-5)
        # Pairs Spark cannot score (coldStartStrategy) get the train mean, never NaN.
        np.testing.assert_allclose(ours[~known], train.ratings.mean(), rtol=1e-5)
        # Explicit ALS at Microsoft Recommenders' regParam is a sane rating model.
        est = model.predict(test.users, test.items)
        rmse = float(np.sqrt(np.mean((est - test.ratings) ** 2)))
        mean_rmse = float(np.sqrt(np.mean((train.ratings.mean() - test.ratings) ** 2)))
        assert rmse < mean_rmse and 0.85 < rmse < 1.15, (rmse, mean_rmse)
        gateway = SparkContext._gateway.proc
    finally:
        model.close()
    assert gateway.poll() is not None  # the JVM has exited
    assert SparkContext._gateway is None and java_children() == []
    info = model.fitted_info()
    assert info["jvm_start_seconds"] > 0 and "jvm_stop_seconds" in info


def test_implicit_scores_rank_like_spark(ml100k, ml100k_slice):
    train, _ = ml100k_slice
    model = spark_adapters.ImplicitALS(rank=8, maxIter=5, alpha=10.0, seed=0, threads=2)
    model.stop_after_fit = False
    model.fit(TrainSet(train, ml100k.rating_scale))
    try:
        assert model.spark_.session.sparkContext.master == "local[2]"  # threads -> local[N]
        users = np.random.default_rng(2).choice(np.unique(train.users), 15, replace=False)
        assert_ranks_like_spark(model, users)
    finally:
        model.close()


def test_fit_stops_its_session_and_jvm(ml100k, ml100k_slice):
    train, _ = ml100k_slice
    model = spark_adapters.ALS(rank=4, maxIter=2, seed=0).fit(
        TrainSet(train.take(np.arange(3000)), ml100k.rating_scale)
    )
    assert model.spark_ is None and SparkContext._gateway is None and java_children() == []
    users = np.arange(5)
    assert model.score(users).shape == (5, ml100k.n_items)  # scoring needs no Spark


def test_missing_java_is_one_line_in_bench_list():
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = "/nonexistent"
    out = subprocess.run(
        [sys.executable, "-m", "bench", "list"], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "spark" in ln)
    assert "unavailable" in line and "Java 17" in line and "JAVA_HOME" in line
