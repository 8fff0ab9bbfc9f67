"""Spark MLlib ALS (``pyspark.ml.recommendation.ALS``), explicit and implicit.

Used as Spark documents it: ``ALS(rank, maxIter, regParam, ...).fit(ratings_df)`` on a
local session.  The session (``local[threads]``, quiet logging, no UI, no progress bars)
is started in ``prepare`` and so timed as ``prepare_seconds`` with the DataFrame upload,
never as fit; ``fitted_info`` records the JVM start on its own (``jvm_start_seconds``).
``fit_prepared`` trains, pulls ``userFactors`` / ``itemFactors`` into numpy arrays
aligned to the harness's dense codes, and stops the session *and its JVM*: a trial leaves
no Java process behind (``SparkSession.stop`` alone keeps pyspark's gateway JVM alive).

Scoring is ``user_factors @ item_factors.T`` in numpy (``factor_scores``), which ranks as
Spark's ``recommendForUserSubset`` does, without a Spark cross-join.  Spark has no factors
for users / items without train rows (its ``coldStartStrategy``): here the harness's rule
applies instead of ``"drop"``: such rows are not dropped from RMSE but estimated by the
train mean (as Surprise does for impossible predictions), items without train rows rank
last, and users without train rows get the popularity ranking.

Spark's ``CrossValidator`` + ``ParamGridBuilder`` over ``rank`` x ``regParam`` is what
``search_space`` declares: ``bench tune`` explores that grid on a validation split carved
from train (one split, not Spark's k folds) and scores the winner on test.

On a cluster (``--spark-master``, ``TrialSpec.cluster``) the session is a driver attached
to that master or a Spark Connect client; the train split goes by reference as Parquet
and ``cluster_info`` is the record's ``env.cluster`` (docs/spark-cluster.md).

``numBlocks`` (Spark's ``setNumBlocks``: user and item blocks) defaults to 4, not Spark's
10: on a local session fewer, larger tasks cost less scheduling; like the DataFrame's
partitions it is fixed, not tied to ``threads``, so the work's partitioning (and the order
of its float sums) cannot depend on the thread count.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _java_missing() -> str | None:
    """Why Spark cannot start a JVM here, or None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return None
    if shutil.which("java"):
        return None
    return (
        "Spark needs Java 17: install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) "
        "or set JAVA_HOME"
    )


_MISSING = _java_missing()
if _MISSING:  # the registry lists spark.* as unavailable with this one line
    raise ImportError(_MISSING)

try:
    from pyspark import SparkContext
    from pyspark.ml.recommendation import ALS as SparkALS
    from pyspark.sql import SparkSession
except ImportError as exc:  # one line in `bench list`, saying what to install
    raise ImportError(f"{exc}: install the extra, pip install -e '.[spark]'") from exc

from bench.adapter import Adapter, LearnsFromInteractions  # noqa: E402
from bench.data.feedback import fill_cold_users, item_popularity  # noqa: E402
from bench.data.model import TrainSet  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.evaluation.ranking import FactorScores  # noqa: E402

log = logging.getLogger(__name__)

#: partitions of the input and of shuffles: fixed, so they cannot depend on ``threads``
PARTITIONS = 4
#: score of items without train rows (Spark has no factors for them): ranked last
COLD_ITEM_SCORE = np.float32(np.finfo(np.float32).min)

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
# pyspark counts as an interpreter: Spark then sets this logger's level (WARN unless
# configured) and says so on stderr
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


class LocalSpark:
    """A Spark session whose driver JVM is started here and ended by ``stop``: a
    ``local[threads]`` session, or, given ``cluster`` (``TrialSpec.cluster``), a driver
    attached to a standalone master (``spark://``) or a Spark Connect client (``sc://``,
    no JVM here).

    The JVM's own stderr (start-up notes, native BLAS probing, ERROR-level log lines) goes
    to a file of the session's private directory; ``stop`` hands its lines to ``logging``
    at debug level, and a JVM that fails to start is reported with its last line."""

    def __init__(self, threads: int, cluster: dict[str, str] | None = None) -> None:
        cluster = cluster or {}
        self.master = cluster.get("spark_master") or f"local[{threads}]"
        self.connect = self.master.startswith("sc://")
        self.data_dir = cluster.get("spark_data_dir") or None
        self.workdir = Path(tempfile.mkdtemp(prefix="recbench-spark-"))
        config = self.workdir / "log4j2.properties"
        config.write_text(_LOG4J2)
        self.jvm_log = self.workdir / "jvm.log"
        self.data_by: str | None = None  # how ``write`` handed the rows to Spark
        start = time.perf_counter()
        try:
            if self.connect:
                self.session = _connect_session(self.master)
            else:
                with _stderr_to(self.jvm_log):  # the JVM child inherits this fd 2
                    builder = (
                        SparkSession.builder.master(self.master)
                        .appName("recbench")
                        .config("spark.ui.enabled", "false")
                        .config("spark.ui.showConsoleProgress", "false")
                        .config("spark.driver.extraJavaOptions",
                                f"-Dlog4j2.configurationFile={config}")
                        .config("spark.local.dir", str(self.workdir))
                        .config("spark.default.parallelism", str(PARTITIONS))
                        .config("spark.sql.shuffle.partitions", str(PARTITIONS))
                    )  # fmt: skip
                    self.session = builder.getOrCreate()
                self.session.sparkContext.setLogLevel("ERROR")
                self._checkpoints()
        except UserError:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        except Exception as exc:  # the JVM did not come up: one line, not a py4j traceback
            last = self._log_lines()[-1:] or [str(exc).strip().splitlines()[0]]
            self._end_jvm()
            shutil.rmtree(self.workdir, ignore_errors=True)
            what = "a local Spark session" if self.local else f"Spark at {self.master}"
            raise UserError(f"cannot start {what}: {last[0]}") from exc
        self.start_seconds = time.perf_counter() - start

    def _checkpoints(self) -> None:
        """A checkpoint directory all executors read (shared data dir, or the session's on
        this machine): ALS checkpoints every 10 iterations, else its lineage overflows the
        JVM's stack at ~25 iterations, and a lost executor recomputes all of it."""
        self.checkpoint_dir: Path | None = None
        if self.connect:
            return
        if self.data_dir:
            base = Path(self.data_dir.removeprefix("file://"))
            base.mkdir(parents=True, exist_ok=True)
            self.checkpoint_dir = Path(tempfile.mkdtemp(prefix="recbench-ckpt-", dir=base))
        elif self.local or _on_this_machine(self.master):
            self.checkpoint_dir = self.workdir / "checkpoints"
        if self.checkpoint_dir is not None:
            self.session.sparkContext.setCheckpointDir(str(self.checkpoint_dir.resolve()))

    @property
    def local(self) -> bool:
        return self.master.startswith("local")

    def write(self, columns: dict[str, np.ndarray], name: str) -> Any:
        """A DataFrame of ``columns``, passed by reference where the executors can read it:
        a Parquet file in the shared data directory (written once per content), in the
        session's directory (a local session, or a master on this machine), else the rows
        from the driver (``createDataFrame``)."""
        table = pa.table(columns)
        if self.data_dir:
            path = _shared_parquet(table, self.data_dir)
            self.data_by = f"parquet {path}"
            return self.session.read.parquet(path)
        if self.local or (not self.connect and _on_this_machine(self.master)):
            path = str(self.workdir / name)
            pq.write_table(table, path)
            self.data_by = f"parquet {path} (a temporary directory of this machine)"
            return self.session.read.parquet(path)
        self.data_by = "rows from the driver (createDataFrame)"
        return self.session.createDataFrame(table).repartition(PARTITIONS)

    def read(self, frame: Any, name: str) -> pa.Table:
        """``frame`` back as an Arrow table (no pandas, no row objects): via Parquet on a
        local session, through the driver (``toArrow``) from a cluster's executors."""
        if not self.local:
            return frame.toArrow()
        path = self.workdir / name
        frame.write.parquet(str(path))
        return pq.read_table(path)

    def info(self) -> dict[str, Any]:
        """The cluster the session runs on, for the record's ``env.cluster``."""
        out: dict[str, Any] = {"master": self.master, "spark_version": self.session.version,
                               "data": self.data_by}
        if getattr(self, "checkpoint_dir", None) is not None:
            out["checkpoint_dir"] = str(self.checkpoint_dir)
        if self.connect:
            return out
        sc = self.session.sparkContext._jsc.sc()
        conf = self.session.sparkContext.getConf()
        out["app_id"] = conf.get("spark.app.id", None)
        # Spark's status store (what its UI shows, kept with the UI off): the driver is
        # one of its entries, the others are executors
        listed = sc.statusStore().executorList(True)
        executors = [listed.apply(i) for i in range(listed.size())]
        executors = [e for e in executors if e.id() != "driver"]
        out["executors"] = len(executors)
        out["cores"] = sum(int(e.totalCores()) for e in executors)
        out["executor_hosts"] = sorted({str(e.hostPort()).rsplit(":", 1)[0] for e in executors})
        out["executor_memory"] = conf.get("spark.executor.memory", "1g")  # Spark's default
        return out

    def stop(self) -> None:
        try:
            self.session.stop()
        except Exception as exc:  # noqa: BLE001 - a cluster gone: the JVM is ended below
            log.debug("spark: stopping the session: %s", exc)
        if not self.connect:
            self._end_jvm()
        for line in self._log_lines():
            log.debug("spark jvm: %s", line)
        if getattr(self, "checkpoint_dir", None) is not None:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _log_lines(self) -> list[str]:
        try:
            return [ln for ln in self.jvm_log.read_text(errors="replace").splitlines() if ln]
        except OSError:
            return []

    @staticmethod
    def _end_jvm() -> None:
        """End pyspark's gateway JVM, which outlives ``SparkSession.stop``: it exits when
        its stdin closes (PythonGatewayServer); the next session launches a fresh one."""
        gateway = SparkContext._gateway
        if gateway is None:
            return
        proc = getattr(gateway, "proc", None)
        try:
            gateway.shutdown()
        except Exception:  # noqa: BLE001 - the process is ended below either way
            pass
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        SparkContext._gateway = None
        SparkContext._jvm = None


#: what Spark Connect's Python client needs beside pyspark (pyspark's ``connect`` extra)
CONNECT_MODULES = ("grpc", "grpc_status", "google.rpc", "zstandard", "pandas")


def _connect_session(url: str) -> Any:
    """A Spark Connect session on ``url``, or a UserError naming what is missing."""
    missing = [m for m in CONNECT_MODULES if not _importable(m)]
    if missing:
        raise UserError(
            f"Spark Connect ({url}) needs pyspark's Connect client, which is not installed "
            f"here (missing: {', '.join(missing)}): pip install 'pyspark[connect]' (grpcio, "
            "grpcio-status, googleapis-common-protos, zstandard), or give a standalone "
            "master spark://HOST:7077"
        )
    return SparkSession.builder.remote(url).appName("recbench").getOrCreate()


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _on_this_machine(master: str) -> bool:
    """Whether every host of a ``spark://`` master is this machine (its workers are
    assumed to be too: a one-machine standalone cluster)."""
    hosts = [hp.rsplit(":", 1)[0].strip("[]") for hp in master[len("spark://"):].split(",")]
    own = {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()}
    return all(h in own or h.startswith("127.") for h in hosts)


def _shared_parquet(table: pa.Table, data_dir: str) -> str:
    """``table`` as a Parquet file in ``data_dir``, named by its content, written once."""
    digest = hashlib.sha256(table.schema.to_string().encode())
    for column in table.columns:
        for chunk in column.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    digest.update(buf)
    directory = Path(data_dir.removeprefix("file://"))
    path = directory / f"recbench-train-{digest.hexdigest()[:20]}.parquet"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        pq.write_table(table, part)
        os.replace(part, path)
    return str(path.resolve())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pyspark warns that it does not support pandas >= 3 even when no pandas is used."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        yield


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` for the block (child processes keep it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as target:
            os.dup2(target.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    """The line of ``exc`` that says what went wrong: for a py4j error the Java exception's
    (``: org.apache.spark.SparkException: Job aborted ...``), not "An error occurred while
    calling o91.fit."."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    java = next((ln[1:].strip() for ln in lines if ln.startswith(": ")), None)
    return (java or (lines[0] if lines else type(exc).__name__))[:500]


def _factor_matrix(table: pa.Table, n: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Spark's ``(id, features)`` rows as a float32 ``(n, rank)`` array over the dense codes,
    and which codes have a row."""
    out = np.zeros((n, rank), dtype=np.float32)
    has = np.zeros(n, dtype=bool)
    if table.num_rows:
        ids = table.column("id").to_numpy().astype(np.int64)
        features = table.column("features").combine_chunks()
        out[ids] = features.flatten().to_numpy().astype(np.float32).reshape(-1, rank)
        has[ids] = True
    return out, has


class _SparkALS(Adapter):
    library: ClassVar[str] = "pyspark"
    #: Spark's ALS defaults to numUserBlocks = numItemBlocks = 10
    recbench_defaults: ClassVar[tuple[str, ...]] = ("numBlocks",)
    implicit_prefs: ClassVar[bool]
    #: the usual Spark grid, ParamGridBuilder().addGrid(als.rank, [5, 10, 20])
    #: .addGrid(als.regParam, [0.05, 0.1, 0.2]), that CrossValidator searches
    search_space: ClassVar[dict[str, list[Any]]] = {
        "rank": [5, 10, 20],
        "regParam": [0.05, 0.1, 0.2],
    }

    rank: int
    maxIter: int  # noqa: N815 - Spark's own parameter names
    regParam: float  # noqa: N815
    alpha: float
    nonnegative: bool
    numBlocks: int  # noqa: N815

    #: stop the session at the end of ``fit_prepared`` (tests keep it to ask Spark itself)
    stop_after_fit: bool = True
    runs_on_cluster: ClassVar[bool] = True
    #: ``TrialSpec.cluster`` (``use_cluster``): {} for a ``local[threads]`` session
    cluster: dict[str, str] = {}  # noqa: RUF012 - replaced, never mutated

    def use_cluster(self, cluster: dict[str, str]) -> None:
        self.cluster = dict(cluster)
        self.cluster_info_: dict[str, Any] = {
            "master": cluster.get("spark_master"),
            "master_from": cluster.get("spark_master_from"),
        }

    def cluster_info(self) -> dict[str, Any]:
        return {k: v for k, v in getattr(self, "cluster_info_", {}).items() if v is not None}

    def _note_cluster(self) -> None:
        """Add what the session reports (executors, cores, memory, version) to
        ``cluster_info`` while it runs; a failure to ask is logged, not raised."""
        if not self.cluster or self.spark_ is None:
            return
        try:
            self.cluster_info_.update(self.spark_.info())
        except Exception as exc:  # noqa: BLE001 - a cluster gone mid-fit: keep what we know
            log.debug("spark: cannot describe the cluster: %s", exc)

    def set_als_params(self, rank: int, max_iter: int, reg_param: float, nonnegative: bool,
                       num_blocks: int) -> None:
        """Store the parameters both variants share, under Spark's own names."""
        self.rank = rank
        self.maxIter = max_iter
        self.regParam = reg_param
        self.nonnegative = nonnegative
        self.numBlocks = num_blocks

    def _rows(self, train: TrainSet) -> dict[str, np.ndarray]:
        """The (user, item, rating) columns Spark fits on."""
        raise NotImplementedError

    def prepare(self, train: TrainSet) -> Any:
        self.close()  # a refit starts from a fresh session
        self.spark_ = LocalSpark(self.threads, self.cluster)
        self.global_mean_ = train.global_mean
        try:
            with _quiet():
                frame = self.spark_.write(self._rows(train), "train.parquet").cache()
            self._note_cluster()
            return frame
        except BaseException:
            self.close()
            raise

    def fit_prepared(self, prepared: Any) -> _SparkALS:
        train = self.train_
        als = SparkALS(
            rank=self.rank,
            maxIter=self.maxIter,
            regParam=self.regParam,
            alpha=self.alpha,
            nonnegative=self.nonnegative,
            implicitPrefs=self.implicit_prefs,
            numUserBlocks=self.numBlocks,
            numItemBlocks=self.numBlocks,
            seed=self.seed,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            coldStartStrategy="nan",  # the harness's cold-start rules apply (module doc)
        )
        try:
            with _quiet():
                self.model_ = als.fit(prepared)
                self.user_factors_, self.user_has_factors_ = _factor_matrix(
                    self.spark_.read(self.model_.userFactors, "users.parquet"), train.n_users,
                    self.rank,
                )  # fmt: skip
                self.item_factors_, self.item_has_factors_ = _factor_matrix(
                    self.spark_.read(self.model_.itemFactors, "items.parquet"), train.n_items,
                    self.rank,
                )  # fmt: skip
            self._note_cluster()
        except Exception as exc:
            # A py4j error formats itself by asking the JVM, which ``close`` ends: take its
            # message now and raise a plain error the trial can record.
            message = _first_line(exc)
            self._note_cluster()
            self.close()
            raise RuntimeError(f"Spark ALS failed: {message}") from None
        finally:
            if self.stop_after_fit:
                self.close()
        self.popularity_ = item_popularity(train.ratings.interactions())
        self.cold_items_ = np.flatnonzero(~self.item_has_factors_)
        self.cold_item_score_, self.cold_user_scores_ = self._cold_scores()
        return self

    def _cold_scores(self) -> tuple[float, np.ndarray]:
        """(the score of an item without factors, the score vector of a user without
        factors): last place and popularity for a ranking model."""
        return COLD_ITEM_SCORE, self.popularity_

    def close(self) -> None:
        """Stop the session and its JVM (idempotent)."""
        spark = getattr(self, "spark_", None)
        if spark is not None:
            start = time.perf_counter()
            spark.stop()
            self.stop_seconds_ = time.perf_counter() - start
            self.spark_ = None
            self.model_ = None

    def fitted_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        start = getattr(self, "jvm_start_seconds_", None)
        if start is not None:
            info["jvm_start_seconds"] = round(start, 3)
        if getattr(self, "stop_seconds_", None) is not None:
            info["jvm_stop_seconds"] = round(self.stop_seconds_, 3)  # inside fit_seconds
        return info

    def bind(self, train: TrainSet) -> Any:
        prepared = super().bind(train)
        self.jvm_start_seconds_ = self.spark_.start_seconds
        return prepared

    def factor_scores(self, users: np.ndarray) -> FactorScores:
        users = np.asarray(users, dtype=np.int32)
        return FactorScores(
            self.user_factors_[users],
            self.item_factors_,
            fixed_items=self.cold_items_,
            fixed_score=self.cold_item_score_,
            score_rows=~self.user_has_factors_[users],  # ``cold_user_scores_`` in ``score``
            score_rows_scores=self.cold_user_scores_,
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = self.factor_scores(users).block()
        return fill_cold_users(scores, users, self.user_has_factors_, self.cold_user_scores_)


class ALS(_SparkALS):
    """Explicit ALS (``implicitPrefs=False``): rating estimates ``u . v``, as Spark's
    ``transform`` gives them (unclipped); ranks by the same estimates."""

    name = "spark.ALS"
    implicit_prefs = False
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True

    def __init__(
        self,
        rank: int = 10,  # Spark's defaults
        maxIter: int = 10,  # noqa: N803 - Spark's own parameter names
        regParam: float = 0.1,  # noqa: N803
        nonnegative: bool = False,
        numBlocks: int = 4,  # noqa: N803
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.set_als_params(rank, maxIter, regParam, nonnegative, numBlocks)
        self.alpha = 1.0  # unused by explicit ALS

    def _rows(self, train: TrainSet) -> dict[str, np.ndarray]:
        r = train.ratings
        return {"user": r.users.astype(np.int32), "item": r.items.astype(np.int32),
                "rating": r.ratings.astype(np.float32)}  # fmt: skip

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        est = np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items])
        known = self.user_has_factors_[users] & self.item_has_factors_[items]
        return np.where(known, est, np.float32(self.global_mean_)).astype(np.float32)

    # A rating model ranks by its rating estimates: a user or item without factors gets the
    # train mean in ``score`` as in ``predict`` (not popularity / last place).
    def _cold_scores(self) -> tuple[float, np.ndarray]:
        mean = np.float32(self.global_mean_)
        return mean, np.full(len(self.popularity_), mean, dtype=np.float32)


class ImplicitALS(LearnsFromInteractions, _SparkALS):
    """Implicit ALS (``implicitPrefs=True``, Hu-Koren-Volinsky): Spark's confidence is
    ``1 + alpha * r`` on the values of the shared feedback policy (``bench.data.feedback``)."""

    name = "spark.ImplicitALS"
    implicit_prefs = True
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        **_SparkALS.search_space,
        "alpha": [1.0, 10.0, 40.0],  # budget-sampled: 27 points
    }

    def __init__(
        self,
        rank: int = 10,  # Spark's defaults
        maxIter: int = 10,  # noqa: N803 - Spark's own parameter names
        regParam: float = 0.1,  # noqa: N803
        alpha: float = 1.0,
        nonnegative: bool = False,
        numBlocks: int = 4,  # noqa: N803
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.set_als_params(rank, maxIter, regParam, nonnegative, numBlocks)
        self.alpha = alpha

    def _rows(self, train: TrainSet) -> dict[str, np.ndarray]:
        coo = self.interactions(train).tocoo()
        return {"user": coo.row.astype(np.int32), "item": coo.col.astype(np.int32),
                "rating": coo.data.astype(np.float32)}  # fmt: skip
