"""Where a Spark adapter's work runs: ``--spark-master`` / ``$RECBENCH_SPARK_MASTER``.

A trial of ``spark.ALS`` starts its own ``local[threads]`` session unless the run names a
Spark cluster: a standalone master (``spark://host:7077``) or a Spark Connect server
(``sc://host[:port]``).  The address travels inside each ``TrialSpec`` (its ``cluster``
field), so a trial stays a self-contained unit that any executor can run, and it is not
part of the trial id or of ``bench compare``'s match key: the cluster is where a trial
runs, not what it is (as ``--executor`` is).  Adapters of other libraries ignore it.

``--spark-data-dir`` / ``$RECBENCH_SPARK_DATA_DIR`` names a directory the driver and every
executor can read at the same path (a shared file system): the train split is written
there once as Parquet and read by reference.  Without one, a master on this machine reads
a Parquet file in the session's temporary directory; any other cluster gets the rows from
the driver (``createDataFrame``).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bench.errors import UserError

ENV_MASTER = "RECBENCH_SPARK_MASTER"
ENV_DATA_DIR = "RECBENCH_SPARK_DATA_DIR"
FLAG_MASTER = "--spark-master"
FLAG_DATA_DIR = "--spark-data-dir"

_HOSTPORT = r"(?:[^\s:/,\[\]]+|\[[0-9a-fA-F:]+\]):\d{1,5}"
#: ``spark://host:port`` or a standby list ``spark://h1:p1,h2:p2`` (Spark's HA masters)
_STANDALONE = re.compile(rf"spark://{_HOSTPORT}(?:,{_HOSTPORT})*/?")
#: ``sc://host``, ``sc://host:15002``, ``sc://host:15002/;token=...`` (Spark Connect)
_CONNECT = re.compile(r"sc://(?:[^\s:/;\[\]]+|\[[0-9a-fA-F:]+\])(?::\d{1,5})?/?(?:;\S*)?")


def add_arguments(run: argparse.ArgumentParser) -> None:
    """The run / tune options that point Spark adapters at a cluster."""
    run.add_argument(FLAG_MASTER, metavar="URL", help="run Spark adapters on this cluster: "
                     f"spark://HOST:7077 or Spark Connect sc://HOST[:PORT] (default: "
                     f"${ENV_MASTER}, else a local[threads] session per trial)")
    run.add_argument(FLAG_DATA_DIR, metavar="DIR", help="directory the Spark driver and "
                     "executors all read: train splits go there as Parquet (default: "
                     f"${ENV_DATA_DIR}; else a temporary directory for a master on this "
                     "machine, the driver's rows otherwise)")


def check_master(url: str) -> str:
    """``url`` stripped, or a UserError unless it is a standalone or Connect address."""
    url = url.strip()
    if _STANDALONE.fullmatch(url) or _CONNECT.fullmatch(url):
        return url
    raise UserError(f"{FLAG_MASTER} {url!r} is not a Spark cluster address; give "
                    "spark://HOST:PORT (a standalone master, port 7077 by default) or "
                    "sc://HOST[:PORT] (Spark Connect, port 15002 by default)")


def resolve(args: argparse.Namespace) -> dict[str, str]:
    """The ``cluster`` of each trial spec from the options (the flag wins over the
    environment variable), or ``{}``: each Spark trial runs on a local session."""
    url = getattr(args, "spark_master", None)
    source = FLAG_MASTER
    if not url and os.environ.get(ENV_MASTER, "").strip():
        url, source = os.environ[ENV_MASTER], ENV_MASTER
    data_dir = getattr(args, "spark_data_dir", None) or os.environ.get(ENV_DATA_DIR, "").strip()
    if not url:
        if getattr(args, "spark_data_dir", None):
            raise UserError(f"{FLAG_DATA_DIR} needs a Spark cluster ({FLAG_MASTER} or "
                            f"${ENV_MASTER})")
        return {}
    cluster = {"spark_master": check_master(url), "spark_master_from": source}
    if data_dir:
        cluster["spark_data_dir"] = str(data_dir)
    return cluster


def place(specs: Iterable[Any], cluster: dict[str, str]) -> list[Any]:
    """``specs`` (``TrialSpec``) with ``cluster`` as where their Spark work runs."""
    return [replace(s, cluster=dict(cluster)) if cluster else s for s in specs]


def describe(cluster: dict[str, str]) -> str:
    """One line for the run's log."""
    where = f"Spark adapters on {cluster['spark_master']} (from {cluster['spark_master_from']})"
    if cluster.get("spark_data_dir"):
        where += f", train splits by reference in {cluster['spark_data_dir']}"
    return where
