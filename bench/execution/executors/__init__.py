"""Executors: where trials run (serial, local processes, a Dask cluster) behind one interface;
each runs a trial in recbench's own worker subprocess and hands the record to the driver."""

from bench.execution.executors.base import (
    ENV_SCHEDULER,
    EXECUTORS,
    DaskExecutor,
    Executor,
    HostSlot,
    LocalExecutor,
    SerialExecutor,
    TrialOutcome,
    TrialTask,
    Worker,
    decode_arrays,
    encode_arrays,
    longest_first,
    make_executor,
    needs_shipping,
    past_costs,
    run_on_dask_worker,
)

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
