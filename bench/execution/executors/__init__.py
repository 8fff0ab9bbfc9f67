"""Executors: where trials run (serial, local processes, a Dask cluster) behind one interface;
each runs a trial in recbench's own worker subprocess and hands the record to the driver."""

from bench.execution.executors.base import (
    Executor,
    HostSlot,
    TrialOutcome,
    TrialTask,
    Worker,
    decode_arrays,
    encode_arrays,
    needs_shipping,
)
from bench.execution.executors.choice import (
    ENV_SCHEDULER,
    EXECUTORS,
    longest_first,
    make_executor,
    past_costs,
)
from bench.execution.executors.dask_cluster import DaskExecutor, run_on_dask_worker
from bench.execution.executors.local import LocalExecutor, SerialExecutor

__all__ = [
    "ENV_SCHEDULER",
    "EXECUTORS",
    "DaskExecutor",
    "Executor",
    "HostSlot",
    "LocalExecutor",
    "SerialExecutor",
    "TrialOutcome",
    "TrialTask",
    "Worker",
    "decode_arrays",
    "encode_arrays",
    "longest_first",
    "make_executor",
    "needs_shipping",
    "past_costs",
    "run_on_dask_worker",
]
