"""One suite on three executors at full size (issue 25 item 3): serial, a hand-started Dask
cluster (``dask scheduler`` + two ``dask worker`` processes) and a standalone Spark cluster
(``spark-class ...deploy.master.Master`` + two ``...deploy.worker.Worker``) for spark.ALS.

``measure`` first runs the suite's cheapest trial once, untimed, so the dataset and its split
are in the data store (``docs/data-store.md``) before any timed run (every timed run then
reads the same store), then, one after another on an otherwise idle machine:

* ``serial``: ``python -m bench run --suite S`` (every adapter; spark.ALS in ``local[2]``);
* ``dask``: the same run with ``--executor dask --scheduler tcp://127.0.0.1:PORT`` against a
  scheduler and two one-thread workers started here from Dask's own CLI (without nannies, so
  a worker is one process), for every adapter but spark.ALS;
* ``spark``: ``--adapter spark.ALS --spark-master spark://127.0.0.1:PORT --spark-data-dir D``
  against a master and two workers of one core each.

A sampler thread reads every process of the run (this script's descendants) twice a second:
its role (driver, recbench worker, Dask scheduler / worker, Spark master / worker / executor /
driver JVM) and its peak resident memory (``VmHWM``).  Bytes moved are the loopback device's
received bytes over the run (``/proc/net/dev``: every message between driver, scheduler,
workers and executors, both ways, on this one machine) and the records' ``bytes_scattered``.
``report`` writes the markdown table from the JSON files.

    python benchmarks/executors_at_size.py measure --out DIR
    python benchmarks/executors_at_size.py report DIR > results/executors_at_size.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_overhead import metric_seconds, overhead  # noqa: E402 (the same definitions)

NETFLIX = "synthetic:users=480189,items=17770,ratings=100480507,seed=0"
ADAPTERS = ["baseline.Popularity", "recbench.ImplicitALS", "implicit.ALS", "spark.ALS"]
SUITE = """description = "Netflix-shaped suite on three executors (benchmarks/executors_at_size.py)"
threads = 2
[[run]]
datasets = [{dataset!r}]
splits = [{{ method = "random", test_fraction = 0.2, seed = 0 }}]
adapters = {adapters!r}
metrics = {{ ks = [10], threshold = "none" }}
time_limit = 7200
[run.params]
"recbench.ImplicitALS" = {{factors = 64, iterations = {iters}, regularization = 10.0, alpha = 1.0}}
"implicit.ALS" = {{ factors = 64, iterations = {iters}, regularization = 10.0, alpha = 2.0 }}
"spark.ALS" = {{ maxIter = {spark_iters} }}
"""
#: Spark's memory for 80M training rows: the local session's driver, the cluster's executors
SPARK_DEFAULTS = """spark.driver.memory 12g
spark.executor.memory 5g
"""
ROLES = [
    ("bench.execution.worker", "recbench worker"),
    ("-m bench run", "bench driver"),
    ("dask scheduler", "Dask scheduler"), ("dask worker", "Dask worker"),
    ("deploy.master.Master", "Spark master"), ("deploy.worker.Worker", "Spark worker"),
    ("CoarseGrainedExecutorBackend", "Spark executor"), ("SparkSubmit", "Spark driver JVM"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_rx() -> int:
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])
    return 0


class Sampler(threading.Thread):
    """Peak VmHWM of every descendant process, by pid, with its role."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[int, dict] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stopped.is_set():
            for p in me.children(recursive=True):
                try:
                    cmd = " ".join(p.cmdline())
                    hwm = next(int(line.split()[1]) for line in
                               Path(f"/proc/{p.pid}/status").read_text().splitlines()
                               if line.startswith("VmHWM:"))
                except (psutil.Error, OSError, StopIteration):
                    continue
                role = next((r for key, r in ROLES if key in cmd), None)
                if role is None:
                    continue
                entry = self.peaks.setdefault(p.pid, {"role": role, "peak_mb": 0.0})
                entry["peak_mb"] = max(entry["peak_mb"], hwm / 1024)
            self.stopped.wait(0.5)


def daemon(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def bench_run(out: Path, label: str, args: list[str], env: dict[str, str]) -> dict:
    """One timed ``bench run`` with its process peaks and loopback bytes."""
    results = out / label
    sampler = Sampler()
    sampler.start()
    rx0, t0 = loopback_rx(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(out / "suite.toml"),
                           "--results", str(results), "--no-plots", *args],
                          env=env, cwd=out, capture_output=True, text=True)  # fmt: skip
    wall, rx = time.perf_counter() - t0, loopback_rx() - rx0
    sampler.stopped.set()
    sampler.join()
    (out / f"{label}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{label}: bench run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    records = [json.loads(line) for f in sorted((results / "runs").glob("*.jsonl"))
               for line in f.read_text().splitlines() if line.strip()]
    return {"label": label, "wall_seconds": wall, "loopback_bytes": rx, "records": records,
            "processes": sampler.peaks, "args": args}


def measure(a: argparse.Namespace) -> None:
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    suite = SUITE.format(dataset=a.dataset, adapters=ADAPTERS, iters=a.iterations,
                         spark_iters=a.spark_iterations)
    (out / "suite.toml").write_text(suite)
    conf = out / "spark-conf"
    conf.mkdir(exist_ok=True)
    (conf / "spark-defaults.conf").write_text(SPARK_DEFAULTS)
    env = {**os.environ, "RECBENCH_CACHE_DIR": str(out / "cache"), "SPARK_CONF_DIR": str(conf),
           "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("RECBENCH_SPARK_MASTER", None)
    which = a.which.split(",")
    if "warm" in which:  # dataset, store and split written once, untimed
        bench_run(out, "warm", ["--adapter", "baseline.Popularity", "--no-topk", "--no-report"],
                  env)
    if "serial" in which:
        save(out, bench_run(out, "serial", [], env))
    if "dask" in which:
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        dask = [daemon(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                        "--no-dashboard"], out / "dask-scheduler.log", env)]
        dask += [daemon(["dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
                         "--no-nanny", "--memory-limit", "0", "--no-dashboard",
                         "--local-directory", str(out / f"dask-worker{i}")],
                        out / f"dask-worker{i}.log", env) for i in range(2)]
        try:
            from distributed import Client

            with Client(address, timeout="60s") as c:
                c.wait_for_workers(2, timeout=120)
            adapters = [x for s in ADAPTERS if s != "spark.ALS" for x in ("--adapter", s)]
            save(out, bench_run(out, "dask", ["--executor", "dask", "--scheduler", address,
                                              *adapters], env))
        finally:
            stop(dask)
    if "spark" in which:
        import pyspark

        home = Path(pyspark.__file__).parent
        port, ui = free_port(), free_port()
        url = f"spark://127.0.0.1:{port}"
        senv = {**env, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(out / "spark-logs"),
                "SPARK_DAEMON_MEMORY": "512m",
                "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"}
        cls = str(home / "bin" / "spark-class")
        spark = [daemon([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                         "--port", str(port), "--webui-port", str(ui)], out / "spark-master.log",
                        senv)]
        for i in range(2):
            (out / f"spark-worker{i}").mkdir(exist_ok=True)
            spark.append(daemon([cls, "org.apache.spark.deploy.worker.Worker", url, "--host",
                                 "127.0.0.1", "--cores", "1", "--memory", "6g", "--webui-port",
                                 "0", "--work-dir", str(out / f"spark-worker{i}")],
                                out / f"spark-worker{i}.log", senv))
        try:
            deadline = time.monotonic() + 180
            while alive_workers(ui) < 2:
                if time.monotonic() > deadline:
                    raise SystemExit("the Spark workers did not register")
                time.sleep(1)
            save(out, bench_run(out, "spark", ["--adapter", "spark.ALS", "--spark-master", url,
                                               "--spark-data-dir", str(out / "spark-shared")],
                                senv))
        finally:
            stop(spark)


def alive_workers(ui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as r:
            return json.load(r).get("aliveworkers", 0)
    except OSError:
        return 0


def save(out: Path, run: dict) -> None:
    run["machine"] = {"cpus": os.cpu_count(), "load_after": os.getloadavg(),
                      "cpu": cpu_name(), "memory_gib": psutil.virtual_memory().total / 2**30}
    (out / f"{run['label']}.json").write_text(json.dumps(run, indent=1))
    print(f"{run['label']}: {run['wall_seconds']:.1f} s, {len(run['records'])} records",
          file=sys.stderr)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return re.sub(r"\s+", " ", line.split(":", 1)[1].strip())
    return "?"


# ----------------------------------------------------------------------------- report


def _gib(mb: float) -> str:
    return f"{mb / 1024:.2f}"


def report(directory: Path) -> str:
    runs = {label: json.loads((directory / f"{label}.json").read_text())
            for label in ("serial", "dask", "spark") if (directory / f"{label}.json").exists()}
    serial = {r["adapter"]: r for r in runs.get("serial", {}).get("records", [])}
    first = next(iter(runs.values()))
    m = first["machine"]
    lines = [
        "# One suite on three executors at full size (issue 25)", "",
        f"Measured on an otherwise idle {m['cpus']}-core {m['cpu']} ({m['memory_gib']:.1f} "
        "GiB), one run after another, by `benchmarks/executors_at_size.py` (its docstring "
        "has the commands); this file is its `report`. The dataset, its store files and the "
        "split were written by an untimed run first, so each timed run reads the same data "
        "store ([docs/data-store.md](../docs/data-store.md)); each run's wall time still "
        "includes its driver generating the synthetic data to check its fingerprint.", "",
        "* **overhead** = the record's `duration_seconds` minus its timed stages (prepare, fit, "
        "predict, recommend) minus its metric computation (`evaluate_seconds` minus predict "
        "and recommend): what a trial costs beyond the work itself;",
        "* **warm-up s** = the worker's throw-away first fit (compiled kernels, a Spark JVM), "
        "part of the overhead of a worker's first trial of an adapter;",
        "* **data s** = load + split + take seconds of the record's `data_delivery`;",
        "* **loopback bytes** = bytes received on the loopback device during the run "
        "(`/proc/net/dev`): every message between driver, scheduler, workers and executors, "
        "both ways, results included;",
        "* **peak GiB** = the process's `VmHWM`, sampled twice a second.", "",
        "## Trials", "",
        "| executor | adapter | trial s | fit s | metrics s | overhead s | warm-up s | data s | "
        "via | bytes scattered | NDCG@10 | equal to serial |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for label, run in runs.items():
        for rec in run["records"]:
            d = rec.get("data_delivery") or {}
            data = sum(d.get(k) or 0.0 for k in ("load_seconds", "split_seconds", "take_seconds"))
            metrics = metric_seconds(rec) or 0.0  # records before schema_minor 3: none
            over = overhead(rec) - metrics
            base = serial.get(rec["adapter"])
            same = "-" if label == "serial" or base is None else (
                "yes" if base.get("metrics") == rec.get("metrics") else "**no**")
            ndcg = (rec.get("metrics") or {}).get("ndcg@10")
            lines.append(
                f"| {label} | {rec['adapter']} | {rec['duration_seconds']:.1f} | "
                f"{rec.get('fit_seconds') or 0:.1f} | {metrics:.1f} | "
                f"**{over:.1f}** | {rec.get('warmup_seconds') or 0:.1f} | {data:.2f} | "
                f"{d.get('via', '-')} | "
                f"{d.get('bytes_scattered', '-')} | "
                f"{'-' if ndcg is None else f'{ndcg:.4f}'} | {same} |")
    lines += ["", "## Runs", "",
              "| executor | adapters | wall s | sum of trial s | loopback MiB | "
              "peak GiB per process (role: peaks) |",
              "|---|---|---:|---:|---:|---|"]
    for label, run in runs.items():
        roles: dict[str, list[float]] = {}
        for p in run["processes"].values():
            roles.setdefault(p["role"], []).append(p["peak_mb"])
        mem = "; ".join(f"{role}: {', '.join(_gib(x) for x in sorted(v, reverse=True))}"
                        for role, v in sorted(roles.items()))
        lines.append(
            f"| {label} | {len(run['records'])} | {run['wall_seconds']:.0f} | "
            f"{sum(r['duration_seconds'] for r in run['records']):.0f} | "
            f"{run['loopback_bytes'] / 2**20:.1f} | {mem} |")
    lines += ["", "Commands (each with `RECBENCH_CACHE_DIR` and `SPARK_CONF_DIR` of the "
              "measurement directory; `spark-defaults.conf`: "
              + ", ".join(f"`{x}`" for x in SPARK_DEFAULTS.strip().splitlines()) + "):", ""]
    for label, run in runs.items():
        lines.append(f"* {label}: `python -m bench run --suite suite.toml --no-plots "
                     f"{' '.join(run['args'])}`".replace(str(directory), "DIR"))
    lines += ["", "The suite (`suite.toml`):", "", "```toml",
              (directory / "suite.toml").read_text().strip(), "```", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--dataset", default=NETFLIX)
    m.add_argument("--iterations", type=int, default=15, help="of both implicit ALS models")
    m.add_argument("--spark-iterations", type=int, default=10, help="spark.ALS maxIter")
    m.add_argument("--which", default="warm,serial,dask,spark")
    r = sub.add_parser("report")
    r.add_argument("dir", type=Path)
    a = ap.parse_args()
    if a.cmd == "measure":
        measure(a)
    else:
        print(report(a.dir))


if __name__ == "__main__":
    main()
