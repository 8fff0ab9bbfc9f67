"""The Python entry point: ``bench.Experiment(...).run()`` and ``bench.run(..., models=...)``
run in-memory adapter classes through the runner the CLI uses, with the same records."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench
from bench.errors import UserError
from bench.execution import registry

ROOT = Path(__file__).resolve().parent.parent
SYNTH = "synthetic:users=300,items=200,ratings=6000,seed=0"
ML_SUITE = """
description = "the registered twin of the in-memory adapter"
[[run]]
datasets = ["ml-100k"]
splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]
adapters = ["baseline.Bias"]
metrics = { ks = [10], threshold = 4.0 }
time_limit = 300
"""


class MyBias(registry.get("baseline.Bias")):
    """A registered adapter's class, wrapped in memory under a new name."""

    name = "mine.Bias"


def cli_records(tmp: Path, suite_text: str, name: str) -> list[dict]:
    suite = tmp / f"{name}.toml"
    suite.write_text(suite_text)
    subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
                    str(tmp / "cli"), "--threads", "1", "--no-report"],
                   check=True, cwd=ROOT, capture_output=True, timeout=900)
    text = (tmp / "cli" / "runs" / f"{name}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_in_memory_adapter_gives_the_registered_adapters_record(tmp_path):
    [registered] = cli_records(tmp_path, ML_SUITE, "twin")
    exp = bench.Experiment([MyBias], "ml-100k", {"method": "random", "test_fraction": 0.2},
                           {"ks": [10], "threshold": 4.0}, results=tmp_path / "api")
    frame = exp.run()
    assert isinstance(frame, pd.DataFrame) and list(frame.adapter) == ["mine.Bias"]
    [mine] = exp.records_
    assert mine["status"] == "ok" and mine["metrics"] == registered["metrics"]
    assert mine["intervals"] == registered["intervals"]
    assert mine["params"] == registered["params"] and mine["split"] == registered["split"]
    assert mine["in_memory_adapter"].endswith("test_python_api.MyBias")
    assert "in_memory_adapter" not in registered
    assert frame.loc[0, "ndcg@10"] == registered["metrics"]["ndcg@10"]
    # the same lists, item for item
    a = bench.results.topk(tmp_path / "cli", registered["trial_id"])
    b = bench.results.topk(tmp_path / "api", mine["trial_id"])
    np.testing.assert_array_equal(a[["user", "rank", "item"]], b[["user", "rank", "item"]])
    # registered for the call only
    assert "mine.Bias" not in registry.available()
    # resumed: a second run records nothing new
    again = bench.Experiment([MyBias], "ml-100k", results=tmp_path / "api").run()
    assert again.loc[0, "trial_id"] == mine["trial_id"]
    assert len((tmp_path / "api" / "runs" / "experiment.jsonl").read_text().splitlines()) == 1


SCRIPT = '''
import json, sys
import numpy as np
import bench

class TopPop(bench.Adapter):
    """Most-rated items first, defined in __main__ as a notebook would."""
    name = "notebook.TopPop"
    stochastic = False

    def __init__(self, smoothing: float = 0.0, seed: int = 0, threads: int = 1):
        self.smoothing = smoothing
        self.seed = seed
        self.threads = threads

    def fit_prepared(self, train):
        counts = np.bincount(train.ratings.items, minlength=train.n_items)
        self.counts_ = (counts + self.smoothing).astype(np.float32)
        return self

    def score(self, users):
        return np.tile(self.counts_, (len(users), 1))

if __name__ == "__main__":  # a Dask LocalCluster's processes import this file again
    frame = bench.Experiment(["baseline.Popularity", TopPop(smoothing=1.0)], sys.argv[1],
                             results=sys.argv[2], executor=sys.argv[3],
                             jobs=int(sys.argv[4])).run()
    print(json.dumps(frame[["adapter", "status", "ndcg@10", "in_memory_adapter"]]
                     .to_dict("records")))
'''


@pytest.mark.parametrize(("executor", "jobs"), [("local", 2), ("dask", 2)])
def test_class_defined_in_main_runs_on_other_executors(tmp_path, executor, jobs):
    if executor == "dask":
        pytest.importorskip("distributed")
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(SCRIPT))
    out = subprocess.run([sys.executable, str(script), SYNTH, str(tmp_path / "res"), executor,
                          str(jobs)],
                         check=True, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    rows = {r["adapter"]: r for r in json.loads(out.stdout.strip().splitlines()[-1])}
    assert rows["notebook.TopPop"]["status"] == "ok"
    assert rows["notebook.TopPop"]["in_memory_adapter"] == "__main__.TopPop"
    # both order the catalogue by train count (Popularity breaks ties as the harness does)
    assert rows["notebook.TopPop"]["ndcg@10"] == rows["baseline.Popularity"]["ndcg@10"]
    [rec] = [r for r in bench.results.load(tmp_path / "res").to_dict("records")
             if r["adapter"] == "notebook.TopPop"]
    assert rec["params.smoothing"] == 1.0 and rec["env.concurrent_trials"] == 2


SUITE_WITH_MINE = f"""
description = "a suite naming an in-memory adapter"
[[run]]
datasets = ["{SYNTH}"]
splits = [{{ method = "random", test_fraction = 0.2, seed = 0 }}]
adapters = ["baseline.Bias", "mine.*"]
params = {{ "mine.Bias" = {{ reg_item = 5.0 }} }}
metrics = {{ ks = [10], threshold = 4.0 }}
"""


def test_run_takes_a_suite_naming_in_memory_models(tmp_path):
    suite = tmp_path / "mine.toml"
    suite.write_text(SUITE_WITH_MINE)
    records = bench.run(suite, tmp_path / "res", models=[MyBias], threads=1)
    by = {r["adapter"]: r for r in records}
    assert set(by) == {"baseline.Bias", "mine.Bias"}
    assert by["mine.Bias"]["status"] == "ok" and by["mine.Bias"]["params"]["reg_item"] == 5.0
    frame = bench.results.frame(records)
    assert list(frame.columns[:3]) == ["trial_id", "suite", "group"]
    with pytest.raises(UserError, match="unknown adapter 'mine.Bias'"):
        bench.run(suite, tmp_path / "res2", threads=1)  # without models: not known


def test_instances_give_the_specs_a_suite_gives():
    bias = registry.get("baseline.Bias")
    exp = bench.Experiment([bias(reg_item=5.0), ("baseline.Bias", {"reg_item": 5.0}),
                            "baseline.Popularity"], SYNTH, {"method": "kfold", "n_folds": 3},
                           seeds=[0, 1])
    specs = exp.specs()
    assert [s.params for s in specs[:3]] == [{"reg_item": 5.0}] * 3
    # the pair are one trial per fold; Bias and Popularity do not depend on the seed
    assert len({s.trial_id for s in specs}) == len(specs) == 6
    assert {s.seed for s in specs} == {0}
    assert [s.adapter for s in bench.Experiment("baseline.Bias", SYNTH).specs()] == [
        "baseline.Bias"]
    with pytest.raises(UserError, match="folds"):
        bench.Experiment(["baseline.Bias"], SYNTH, folds=[3]).specs()


class Unnamed(bench.Adapter):
    pass


class Taken(MyBias):
    name = "baseline.Popularity"


class Unpicklable(MyBias):
    name = "mine.Locked"
    lock = threading.Lock()


@pytest.mark.parametrize(("model", "message"), [
    (Unnamed, "needs a name"),
    (Taken, "is taken by recbench_adapters.baselines"),
    (Unpicklable, "cannot be sent to the worker processes"),
    (42, "not an adapter class"),
])
def test_bad_in_memory_models_are_refused_before_anything_runs(tmp_path, model, message):
    with pytest.raises(UserError, match=message):
        bench.run([], tmp_path / "res", models=[model])
    assert not (tmp_path / "res").exists()


def test_the_python_api_page_runs_as_shown(tmp_path, monkeypatch):
    """docs/python-api.md: every example, with its output, is executed."""
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(ROOT / "docs" / "python-api.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20 and result.failed == 0


def test_a_worker_that_cannot_rebuild_the_class_fails_the_trial_with_the_reason(tmp_path):
    """e.g. a Dask worker lacking a module the class was pickled by reference with."""
    from bench.execution.executors import Worker

    spec = bench.Experiment(["baseline.Bias"], SYNTH).specs()[0]
    request = {"spec": spec.to_dict(), "results_dir": None, "return_per_user": True,
               "adapter_code": "bm90IGEgcGlja2xl"}  # base64 of b"not a pickle"
    worker = Worker(tmp_path / "worker.log", 1)
    try:
        answer, problem = worker.run(request, timeout=120)
    finally:
        worker.close()
    assert problem is None and answer["status"] == "failed"
    assert answer["error"].startswith("in-memory adapter baseline.Bias could not be rebuilt")
