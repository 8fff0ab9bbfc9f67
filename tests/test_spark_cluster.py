"""spark.ALS on a real Spark standalone cluster started on this machine from pyspark's own
scripts (``spark-class ...deploy.master.Master`` and two ``...deploy.worker.Worker`` of one
core each), driven through the real CLI (``python -m bench run --spark-master``).

* a trial on the cluster: its record names the cluster (master, executors, cores, memory,
  Spark version, how the data went), the train split is read by reference from the shared
  data directory, the trial id is the local trial's and so are the metrics (``local[1]``);
* a worker (its JVM and its executor) SIGKILLed mid-fit: the trial is recorded once, ok
  (Spark recovered on the other worker) or failed, and a re-run resumes without running
  or recording it again.

Skipped only when Java is missing.  The cluster is always torn down (each daemon is
started in its own process group, killed in the fixture's finalizer).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java here: a Spark cluster needs Java 17", allow_module_level=True)

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
REPO = Path(__file__).resolve().parents[1]
SMALL = "synthetic:users=300,items=200,ratings=6000,seed=0"
#: the killed-worker trial: long enough that the kill lands inside the fit
LONGER = "synthetic:users=1000,items=500,ratings=30000,seed=1"

SUITE = """\
description = "spark.ALS on a standalone cluster (tests/test_spark_cluster.py)"
threads = 1
[[run]]
datasets = ["{dataset}"]
splits = [{{ method = "random", test_fraction = 0.2, seed = 0 }}]
adapters = ["spark.ALS"]
params = {{ "spark.ALS" = {{ rank = 4, maxIter = {iters} }} }}
metrics = {{ ks = [10], threshold = 4.0 }}
time_limit = {time_limit}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECBENCH_SPARK")}
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1",
               SPARK_LOG_DIR=str(tmp / "logs"),
               SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
               SPARK_DAEMON_MEMORY="256m")  # fmt: skip
    return env


class Cluster:
    """A master and its workers, each in a process group of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = spark_env(tmp)
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}

    def daemon(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - the daemon's stderr
        self.procs[name] = subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), *args], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def start(self, workers: int) -> None:
        self.daemon("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        for i in range(workers):
            workdir = self.tmp / f"worker{i}"
            workdir.mkdir()
            self.daemon(f"worker{i}", "org.apache.spark.deploy.worker.Worker", self.url,
                        "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                        "--webui-port", "0", "--work-dir", str(workdir))
        deadline = time.monotonic() + 240
        while self.state().get("aliveworkers", 0) < workers:
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"{name} exited: {self.log_tail(name)}"
            assert time.monotonic() < deadline, f"workers did not register: {self.log_tail()}"
            time.sleep(0.5)

    def state(self) -> dict:
        """The master's own JSON view (its web UI's /json)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
                return json.load(r)
        except OSError:
            return {}

    def log_tail(self, name: str = "master") -> str:
        try:
            return (self.tmp / f"{name}.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def kill(self, name: str) -> None:
        """SIGKILL a daemon's process group: the worker JVM and the executors it launched."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("spark-cluster"))
    try:
        c.start(workers=2)
        yield c
    finally:
        c.stop()


def bench(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", "run", "--no-report", *args],
                            env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)  # fmt: skip


def run_cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = bench(args, env)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def suite_file(tmp: Path, dataset: str, iters: int, time_limit: int = 600) -> Path:
    path = tmp / f"suite-{iters}.toml"
    path.write_text(SUITE.format(dataset=dataset, iters=iters, time_limit=time_limit))
    return path


def records(results: Path, suite: Path) -> list[dict]:
    path = results / "runs" / f"{suite.stem}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_trial_on_the_cluster_names_it_and_matches_local(cluster, tmp_path):
    suite = suite_file(tmp_path, SMALL, iters=4)
    shared = tmp_path / "shared"
    env = {**spark_env(tmp_path), "RECBENCH_SPARK_MASTER": "spark://127.0.0.1:1",  # flag wins
           "RECBENCH_SPARK_DATA_DIR": str(shared)}  # fmt: skip
    code, out = run_cli(["--suite", str(suite), "--results", str(tmp_path / "cluster"),
                         "--spark-master", cluster.url], env)
    assert code == 0, out
    (rec,) = records(tmp_path / "cluster", suite)
    assert rec["status"] == "ok", rec["error"]
    info = rec["env"]["cluster"]
    assert info["master"] == cluster.url and info["master_from"] == "--spark-master"
    assert info["spark_version"] == pyspark.__version__
    assert info["executors"] == 2 and info["cores"] == 2, info  # two workers of one core
    assert info["executor_hosts"] == ["127.0.0.1"] and info["executor_memory"] == "1g"
    assert info["app_id"].startswith("app-")
    # the train split went by reference: one Parquet file in the shared directory
    (parquet,) = shared.glob("recbench-train-*.parquet")
    assert info["data"] == f"parquet {parquet.resolve()}"
    assert rec["schema_minor"] >= 2 and "warmup_seconds" not in rec  # no throw-away app

    # the same trial on a local[1] session: same id (the cluster is where it ran, not what
    # it is), same metrics (Spark ALS with a seed over fixed partitions)
    code, out = run_cli(["--suite", str(suite), "--results", str(tmp_path / "local")],
                        spark_env(tmp_path))
    assert code == 0, out
    (local,) = records(tmp_path / "local", suite)
    assert "cluster" not in local["env"]
    assert local["trial_id"] == rec["trial_id"] and local["reproducible"] is True
    assert local["metrics"] == rec["metrics"]


def executor_stage(worker_dir: Path, earlier: set[Path]) -> int:
    """The highest stage an executor of this worker has run a task of (its stderr), in an
    application not among ``earlier``."""
    stages = [-1]
    for log in worker_dir.glob("app-*/*/stderr"):
        if log.parents[1] in earlier:
            continue
        text = log.read_text(errors="replace")
        stages += [int(n) for n in re.findall(r"Running task \S+ in stage (\d+)\.", text)]
    return max(stages)


def test_worker_killed_mid_fit_is_recorded_once_and_resumes(cluster, tmp_path):
    suite = suite_file(tmp_path, LONGER, iters=25, time_limit=300)
    results = tmp_path / "results"
    env = {**spark_env(tmp_path), "RECBENCH_SPARK_MASTER": cluster.url}
    args = ["--suite", str(suite), "--results", str(results)]
    earlier = set(cluster.tmp.glob("worker*/app-*"))  # applications of earlier tests
    proc = bench(args, env)
    try:
        # ALS's iterations are stages well past the data's first few: wait for one on a
        # worker, then kill that worker and its executor
        deadline = time.monotonic() + 400
        victim = None
        while victim is None:
            assert proc.poll() is None, f"the run ended before the kill: {proc.stdout.read()}"
            assert time.monotonic() < deadline, "no ALS stage ran on the cluster"
            for i in range(2):
                if executor_stage(cluster.tmp / f"worker{i}", earlier) >= 8:
                    victim = f"worker{i}"
                    break
            time.sleep(0.2)
        cluster.kill(victim)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    (rec,) = records(results, suite)  # one record, whatever happened
    assert rec["status"] in ("ok", "failed"), (rec["status"], rec["error"], out)
    assert rec["env"]["cluster"]["master_from"] == "RECBENCH_SPARK_MASTER"
    if rec["status"] == "failed":
        assert "Spark ALS failed" in rec["error"]
        assert proc.returncode == 1
    else:  # Spark ran the lost tasks again on the worker left
        assert proc.returncode == 0, out
        assert rec["metrics"]["rmse"] > 0
    # a re-run resumes: the trial is recorded, so it is neither run nor recorded again
    code, out = run_cli(args, env)
    assert "1 of 1 trials already recorded" in out, out
    assert code == proc.returncode
    assert records(results, suite) == [rec]


def connect_client() -> bool:
    """Whether pyspark's Spark Connect client is installed here (``pyspark[connect]``)."""
    from recbench_adapters import spark as spark_adapters

    return all(spark_adapters._importable(m) for m in spark_adapters.CONNECT_MODULES)


def test_spark_connect_trial_or_one_line_error(tmp_path):
    """``sc://``: with the Connect client installed, a trial on a Connect server started
    here from pyspark's own ``sbin/start-connect-server.sh`` (serving a local[1] session);
    without it, one failed record whose error says what to install."""
    suite = suite_file(tmp_path, SMALL, iters=4)
    env = spark_env(tmp_path)
    results = tmp_path / "results"
    if not connect_client():
        code, out = run_cli(["--suite", str(suite), "--results", str(results),
                             "--spark-master", "sc://127.0.0.1:1"], env)
        (rec,) = records(results, suite)
        assert code == 1 and rec["status"] == "failed", out
        assert "pip install 'pyspark[connect]'" in rec["error"] and "\n" not in rec["error"]
        return
    port = free_port()
    # the server is a driver (Spark wants a heap of at least 450 MiB), not a small daemon
    server_env = {**env, "SPARK_PID_DIR": str(tmp_path), "SPARK_LOG_DIR": str(tmp_path),
                  "SPARK_DAEMON_MEMORY": "1g"}
    with open(tmp_path / "connect.log", "wb") as log:
        server = subprocess.Popen(
            [str(SPARK_HOME / "sbin" / "start-connect-server.sh"), "--wait",
             "--master", "local[1]", "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", "spark.ui.enabled=false"],
            env=server_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while "Spark Connect server started" not in (tmp_path / "connect.log").read_text(
                errors="replace"):  # fmt: skip
            log = (tmp_path / "connect.log").read_text(errors="replace")
            assert server.poll() is None and time.monotonic() < deadline, (
                [ln for ln in log.splitlines() if "Exception" in ln][:3] or log[-1500:])
            time.sleep(0.5)
        code, out = run_cli(["--suite", str(suite), "--results", str(results),
                             "--spark-master", f"sc://127.0.0.1:{port}"], env)
        (rec,) = records(results, suite)
        assert code == 0 and rec["status"] == "ok", out
        info = rec["env"]["cluster"]
        assert info["master"] == f"sc://127.0.0.1:{port}"
        assert info["spark_version"] == pyspark.__version__
        assert info["data"] == "rows from the driver (createDataFrame)"
        assert rec["metrics"]["rmse"] > 0
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_the_cluster_is_where_a_trial_runs_not_what_it_is(monkeypatch):
    """``--spark-master`` wins over ``$RECBENCH_SPARK_MASTER``; the address rides in the
    spec across processes and changes neither the trial id nor the match key."""
    from bench.cli import build_parser
    from bench.errors import UserError
    from bench.execution import record, spark_master
    from bench.execution.trial import TrialSpec, base_record

    def resolve(*argv: str) -> dict:
        return spark_master.resolve(build_parser().parse_args(["run", "--suite", "x", *argv]))

    monkeypatch.delenv(spark_master.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(spark_master.ENV_MASTER, "spark://env-host:7077")
    assert resolve() == {"spark_master": "spark://env-host:7077",
                         "spark_master_from": "RECBENCH_SPARK_MASTER"}
    assert resolve("--spark-master", "sc://h:15002", "--spark-data-dir", "/shared") == {
        "spark_master": "sc://h:15002", "spark_master_from": "--spark-master",
        "spark_data_dir": "/shared"}  # fmt: skip
    monkeypatch.delenv(spark_master.ENV_MASTER)
    assert resolve() == {}
    for bad in ("host:7077", "spark://host", "local[2]", "sc://"):
        with pytest.raises(UserError, match="not a Spark cluster address"):
            resolve("--spark-master", bad)
    with pytest.raises(UserError, match="needs a Spark cluster"):
        resolve("--spark-data-dir", "/shared")

    spec = TrialSpec.from_dict({
        "dataset": SMALL, "split": {"method": "random", "test_fraction": 0.2, "seed": 0},
        "fold": 0, "adapter": "spark.ALS"})  # fmt: skip
    (placed,) = spark_master.place([spec], resolve("--spark-master", "spark://h:7077"))
    assert TrialSpec.from_dict(json.loads(json.dumps(placed.to_dict()))) == placed
    assert placed.cluster["spark_master"] == "spark://h:7077"
    assert placed.trial_id == spec.trial_id
    assert record.match_key(base_record(placed)) == record.match_key(base_record(spec))
