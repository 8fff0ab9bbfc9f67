"""Hyper-parameter tuning on a validation split carved from train; test rows are never read.

Each candidate parameter setting is an ordinary trial with ``stage="validation"``: it fits
on the fold's train rows minus a validation slice and is scored on that slice (see
``bench.splitting.splits.validation_rows``).  The best setting per (dataset, split, adapter) is then
run on the real test fold as a trial labelled ``tuned``.  Candidates are the adapter's
declared ``search_space`` grid (a seeded sample of ``budget`` points when the grid is
larger) plus its defaults, so tuning can never pick something worse than the defaults on
validation.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.adapter import Adapter
from bench.errors import UserError
from bench.evaluation.metrics import lower_is_better


@dataclass(frozen=True)
class TuneSpec:
    metric: str = "ndcg@10"
    budget: int = 12
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict | bool) -> TuneSpec:
        if d is True:
            return cls()
        if not isinstance(d, dict):
            raise UserError(f"tune must be true or a table, got {d!r}")
        unknown = set(d) - {"metric", "budget", "seed"}
        if unknown:
            raise UserError(f"unknown tune option(s): {', '.join(sorted(unknown))}")
        spec = cls(**d)
        if spec.budget < 1:
            raise UserError(f"tune budget must be at least 1, got {spec.budget}")
        return spec

    @property
    def lower_is_better(self) -> bool:
        return lower_is_better(self.metric)


def candidates(cls: type[Adapter], fixed: dict, tune: TuneSpec) -> list[dict]:
    """Parameter settings to try: defaults first, then (a seeded sample of) the grid."""
    space = {k: v for k, v in cls.search_space.items() if k not in fixed}
    keys = sorted(space)
    grid = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(
        *(space[k] for k in keys)
    )]
    if len(grid) > tune.budget:
        rng = np.random.default_rng(tune.seed)
        grid = [grid[i] for i in sorted(rng.choice(len(grid), tune.budget, replace=False))]
    out = [dict(fixed)]
    for point in grid:
        params = {**fixed, **point}
        if params not in out:
            out.append(params)
    return out


def best(records: list[dict], metric: str) -> dict | None:
    """The validation record with the best ``metric`` (ties: the first recorded)."""
    scored = [r for r in records if r["status"] == "ok" and r["metrics"].get(metric) is not None]
    if not scored:
        return None
    sign = 1.0 if lower_is_better(metric) else -1.0
    return min(scored, key=lambda r: sign * r["metrics"][metric])


def write_summary(path: Path, entries: list[dict]) -> None:
    """The chosen parameters with the validation score they reached, for people and CI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
