"""Implicit-only data (interactions or counts, no ratings) as a first-class mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.data import datasets
from bench.errors import UserError
from bench.evaluation.evaluate import MetricSpec
from bench.execution import store, suites
from bench.execution.trial import TrialSpec, run_trial
from bench.splitting.splits import SplitSpec

SYNTH = "synthetic:users=120,items=80,ratings=2000,seed=3"


def write(tmp_path: Path, text: str, name: str = "plays.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def interactions_csv(tmp_path: Path, n_users: int = 60, n_items: int = 40) -> Path:
    """user,item,timestamp rows (no rating column): who clicked what, when."""
    rng = np.random.default_rng(0)
    lines = ["user,item,timestamp"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=int(rng.integers(6, 15)), replace=False):
            lines.append(f"user{u},item{i},{int(rng.integers(10**9, 2 * 10**9))}")
    return write(tmp_path, "\n".join(lines) + "\n", "clicks.csv")


# -- loading ---------------------------------------------------------------------------------


def test_file_without_rating_column_is_implicit_data(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,timestamp\na,x,5\na,y,6\nb,x,7\n")
    ds = datasets.load(f"csv:{path}")
    assert ds.implicit and ds.value_kind == "presence"
    assert ds.ratings.ratings.tolist() == [1.0, 1.0, 1.0]
    assert ds.rating_scale == (0.0, 1.0) and ds.ratings.timestamps.tolist() == [5, 6, 7]
    assert ds.meta["value_kind"] == "presence"
    assert ds.meta["columns"] == {"user": "user", "item": "item", "timestamp": "timestamp"}


def test_count_column_is_detected_or_named(tmp_path: Path) -> None:
    path = write(tmp_path, "user\titem\tplays\n1\t1\t5\n1\t2\t6\n2\t1\t7\n", "plays.tsv")
    ds = datasets.load(f"csv:{path}")
    assert ds.value_kind == "count" and ds.ratings.ratings.tolist() == [5.0, 6.0, 7.0]
    assert ds.rating_scale == (0.0, 7.0) and ds.meta["columns"]["count"] == "plays"
    other = write(tmp_path, "user,item,n_listens\n1,1,3\n2,1,1\n", "listens.csv")
    ds = datasets.load(f"csv:{other}?count=n_listens")
    assert ds.value_kind == "count" and ds.ratings.ratings.tolist() == [3.0, 1.0]


def test_rating_none_ignores_other_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,session\n1,1,s1\n2,1,s2\n")
    ds = datasets.load(f"csv:{path}?rating=none")
    assert ds.value_kind == "presence" and len(ds.ratings) == 2


def test_a_rating_column_still_means_ratings(tmp_path: Path) -> None:
    path = write(tmp_path, "user,item,rating,plays\n1,1,4,9\n2,1,2,1\n")
    ds = datasets.load(f"csv:{path}")
    assert not ds.implicit and ds.ratings.ratings.tolist() == [4.0, 2.0]


@pytest.mark.parametrize(
    ("text", "spec", "message"),
    [
        ("user,item,plays\n1,1,3\n1,2,0\n", "", "line 3: count 0 is not positive"),
        ("user,item,plays\n1,1,3\n1,2,x\n", "", "line 3: count 'x' is not a number"),
        ("user,item\n1,1\n", "?scale=1-5", "scale= applies to ratings"),
        ("user,item,plays\n1,1,3\n", "?rating=none&count=plays", "not both"),
    ],
)
def test_bad_implicit_input_is_one_line(tmp_path: Path, text: str, spec: str, message: str):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        datasets.load(f"csv:{path}{spec}")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_synthetic_implicit_keeps_the_generated_rows() -> None:
    explicit = datasets.load(SYNTH)
    implicit = datasets.load(SYNTH + ",implicit=1")
    assert not explicit.implicit and implicit.value_kind == "presence"
    assert np.array_equal(implicit.ratings.users, explicit.ratings.users)
    assert np.array_equal(implicit.ratings.items, explicit.ratings.items)
    assert np.array_equal(implicit.ratings.timestamps, explicit.ratings.timestamps)
    assert set(implicit.ratings.ratings.tolist()) == {1.0}
    assert datasets.load(SYNTH + ",implicit=0").fingerprint() == explicit.fingerprint()
    with pytest.raises(UserError):
        datasets.load(SYNTH + ",implicit=maybe")


def test_registry_table_entry_keeps_the_mode_through_the_cache(table_entry) -> None:
    table_entry("plays", "p.csv", "user,item,plays\n1,1,4\n1,2,9\n2,2,1\n")
    first = datasets.load("plays")
    again = datasets.load("plays")
    assert again.meta["loaded_from_cache"] and not first.meta["loaded_from_cache"]
    assert first.value_kind == again.value_kind == "count"
    assert again.rating_scale == (0.0, 9.0) and again.fingerprint() == first.fingerprint()


# -- trials ----------------------------------------------------------------------------------


def trial(adapter: str, tmp_path: Path, threshold: float | None = 4.0) -> dict:
    spec = TrialSpec(
        dataset=SYNTH + ",implicit=1",
        split=SplitSpec("random", test_fraction=0.2, seed=0),
        fold=0,
        adapter=adapter,
        metrics=MetricSpec(ks=(10,), threshold=threshold),
    )
    record, _ = run_trial(spec, tmp_path)
    return record


def test_rating_models_are_skipped_with_the_reason(tmp_path: Path) -> None:
    for adapter in ("surprise.SVD", "baseline.Bias", "recbench.ALS"):
        record = trial(adapter, tmp_path)
        assert record["status"] == "skipped", record
        assert record["error"].startswith(f"implicit-only data: adapter {adapter} predicts ratings")
        assert record["metrics"] == {} and record["metric_options"]["threshold"] is None


def test_ranking_models_count_every_test_interaction_relevant(tmp_path: Path) -> None:
    record = trial("baseline.Popularity", tmp_path, threshold=4.0)
    assert record["status"] == "ok", record["error"]
    assert record["metric_options"]["threshold"] is None  # not the suite's 4.0
    assert "rmse" not in record["metrics"] and record["metrics"]["ndcg@10"] > 0
    # every test row is relevant: each test user is evaluated (with the threshold applied to
    # values of 1, none would be); synthetic: users may have a single rating, so a few users
    # have no test row at all
    ds = datasets.load(SYNTH + ",implicit=1")
    assert record["metrics"]["n_eval_users"] > 0.8 * ds.n_users


# -- the suite, end to end -------------------------------------------------------------------


def test_implicit_suite_is_separate_from_all() -> None:
    suite = suites.load("implicit")
    specs = suites.expand(suite, threads=1)
    assert {"baseline.Popularity", "surprise.SVD", "implicit.ALS"} <= {s.adapter for s in specs}
    assert all(datasets.load(s.dataset).implicit for s in specs[:1])
    assert "implicit" not in {r["group"] for r in suites.load("all").runs}


def test_csv_without_ratings_runs_a_suite_end_to_end(tmp_path: Path) -> None:
    data = interactions_csv(tmp_path)
    suite = tmp_path / "clicks.toml"
    suite.write_text(
        'description = "implicit-only csv"\nthreads = 1\n[[run]]\n'
        f'datasets = ["csv:{data}"]\n'
        'splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]\n'
        'adapters = ["baseline.Popularity", "surprise.SVD"]\n'
        "metrics = { ks = [10], threshold = 4.0 }\ntime_limit = 120\n"
    )
    results = tmp_path / "results"
    res = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results", str(results),
         "--no-plots"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # exit 0: every runnable trial is ok; the rating model is skipped by design
    assert res.returncode == 0, res.stderr
    records = {r["adapter"]: r for r in store.read(store.run_file(results, "clicks"))}
    pop, svd = records["baseline.Popularity"], records["surprise.SVD"]
    assert pop["status"] == "ok" and pop["metrics"]["ndcg@10"] > 0
    assert pop["metric_options"]["threshold"] is None
    assert svd["status"] == "skipped"
    assert svd["error"].startswith("implicit-only data: adapter surprise.SVD predicts ratings")
    board = (results / "LEADERBOARD.md").read_text()
    assert "every test item relevant" in board and "relevant = test rating >= 4" not in board
    assert json.dumps(pop["metric_options"])  # stays JSON
