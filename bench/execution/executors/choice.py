"""Choosing an executor (``--executor``, ``--jobs``, ``--scheduler``) and the order trials are
handed to it when several run at once (longest first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.execution.executors.base import Executor
from bench.execution.executors.dask_cluster import DaskExecutor
from bench.execution.executors.local import LocalExecutor, SerialExecutor

EXECUTORS = ("serial", "local", "dask")
ENV_SCHEDULER = "RECBENCH_DASK_SCHEDULER"


def make_executor(kind: str, log_path: Path, jobs: int | None = None,
                  scheduler: str | None = None) -> Executor:
    """``kind`` is one of ``EXECUTORS``; ``log_path`` receives the local workers' output."""
    if kind == "local":
        return LocalExecutor(log_path, jobs or os.cpu_count() or 1)
    if kind == "dask":
        return DaskExecutor(scheduler or os.environ.get(ENV_SCHEDULER) or None, jobs)
    return SerialExecutor(log_path)


def longest_first(specs: list, history: dict[tuple, float]) -> list:
    """Specs with a known cost (past records' fit + recommend seconds for the same adapter
    and dataset, else the adapter's ``cost_estimate_seconds``) longest first, then the
    others in input order; so the run does not end on one long trial while slots idle."""
    from bench.execution import registry

    def cost(spec: Any) -> float | None:
        if (spec.adapter, spec.dataset) in history:
            return history[(spec.adapter, spec.dataset)]
        try:
            return getattr(registry.get(spec.adapter), "cost_estimate_seconds", None)
        except Exception:  # noqa: BLE001 - an unavailable adapter fails in its trial
            return None

    costs = [cost(s) for s in specs]
    known = sorted((i for i, c in enumerate(costs) if c is not None), key=lambda i: -costs[i])
    return [specs[i] for i in known] + [s for s, c in zip(specs, costs, strict=True) if c is None]


def past_costs(records: list[dict]) -> dict[tuple, float]:
    """Mean fit + recommend seconds per (adapter, dataset) over finished records."""
    sums: dict[tuple, list[float]] = {}
    for rec in records:
        if rec.get("status") == "ok" and rec.get("fit_seconds") is not None:
            seconds = rec["fit_seconds"] + (rec.get("recommend_seconds") or 0.0)
            sums.setdefault((rec["adapter"], rec["dataset"]), []).append(seconds)
    return {k: sum(v) / len(v) for k, v in sums.items()}
