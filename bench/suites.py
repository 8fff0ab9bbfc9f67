"""Suites declared as data (``bench/suites/*.toml``) expanded into trial specs.

A suite file holds ``description``, optional ``include = ["other suite", ...]`` and any
number of ``[[run]]`` tables::

    [[run]]
    datasets = ["ml-100k"]                       # registry names, csv:PATH, synthetic:...
    splits = [{ method = "kfold", n_folds = 5, seed = 0 }]
    adapters = ["surprise.*", "baseline.Bias"]   # fnmatch patterns over available adapters
    exclude = ["surprise.SVDpp"]                 # optional
    metrics = { ks = [10], threshold = 4.0 }     # threshold = "none": every test item relevant
    seeds = [0]                                  # optional, model seeds
    params = { "surprise.SVD" = { n_factors = 50 } }        # optional fixed parameters
    grid = { "recbench.ALS" = { factors = [8, 16, 32] } }   # optional sweeps (product)
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bench import registry
from bench.errors import UserError
from bench.trial import TrialSpec

RUN_KEYS = {
    "datasets",
    "splits",
    "adapters",
    "exclude",
    "metrics",
    "seeds",
    "params",
    "grid",
    "time_limit",
}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: str
    runs: tuple[dict, ...]


def suite_files() -> dict[str, Path]:
    """Built-in suites plus any in directories listed in ``RECBENCH_SUITES_PATH``."""
    found: dict[str, Path] = {}
    builtin = resources.files("bench") / "suites"
    for entry in builtin.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = Path(str(entry))
    for d in filter(None, os.environ.get("RECBENCH_SUITES_PATH", "").split(os.pathsep)):
        for p in sorted(Path(d).glob("*.toml")):
            found[p.stem] = p
    return found


def parse_file(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"suite file {path}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read suite file {path}: {exc.strerror}") from None


def load(name: str, _seen: tuple[str, ...] = ()) -> Suite:
    """A suite by name, or by path to a ``.toml`` file; includes are flattened."""
    files = suite_files()
    if name.endswith(".toml") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"suite file {path} does not exist")
        name = path.stem
    elif name in files:
        path = files[name]
    else:
        raise UserError(f"unknown suite {name!r}; known suites: {', '.join(sorted(files))}")
    if name in _seen:
        raise UserError(f"suite {name!r} includes itself ({' -> '.join(_seen + (name,))})")
    doc = parse_file(path)
    runs: list[dict] = []
    for inc in doc.get("include", []):
        runs.extend(load(inc, _seen + (name,)).runs)
    for i, run in enumerate(doc.get("run", [])):
        unknown = set(run) - RUN_KEYS
        if unknown:
            raise UserError(
                f"suite file {path}: run {i + 1} has unknown key(s) {', '.join(sorted(unknown))}"
            )
        for key in ("datasets", "splits", "adapters"):
            if not run.get(key):
                raise UserError(f"suite file {path}: run {i + 1} needs a non-empty {key!r}")
        runs.append(run)
    return Suite(name, doc.get("description", ""), str(path), tuple(runs))


def match_adapters(patterns: list[str], exclude: list[str], available: list[str]) -> list[str]:
    chosen: list[str] = []
    for pat in patterns:
        hits = fnmatch.filter(available, pat)
        if not hits and not any(c in pat for c in "*?["):
            registry.get(pat)  # raises a clear error: unknown or unavailable here
        chosen.extend(h for h in hits if h not in chosen)
    return [a for a in chosen if not any(fnmatch.fnmatch(a, x) for x in exclude)]


def threshold_option(metrics: dict) -> dict:
    out = dict(metrics)
    if isinstance(out.get("threshold"), str):
        if out["threshold"].lower() != "none":
            raise UserError(
                f"metric threshold must be a number or 'none', got {out['threshold']!r}"
            )
        out["threshold"] = None
    return out


def expand(
    suite: Suite,
    *,
    threads: int,
    datasets: list[str] | None = None,
    adapters: list[str] | None = None,
    time_limit: float | None = None,
) -> list[TrialSpec]:
    """Trial specs of ``suite``, optionally restricted to some datasets / adapter patterns."""
    available = registry.available()
    specs: list[TrialSpec] = []
    seen: set[str] = set()
    for run in suite.runs:
        names = match_adapters(run["adapters"], run.get("exclude", []), available)
        if adapters:
            names = [a for a in names if any(fnmatch.fnmatch(a, p) for p in adapters)]
        run_datasets = run["datasets"] if not datasets else datasets
        metrics = threshold_option(run.get("metrics", {}))
        for dataset, split, adapter, seed in itertools.product(
            run_datasets, run["splits"], names, run.get("seeds", [0])
        ):
            from bench.splits import SplitSpec

            split_spec = SplitSpec.from_dict(split)
            for params in param_sets(run, adapter):
                for fold in split_spec.folds:
                    spec = TrialSpec(
                        dataset=dataset,
                        split=split_spec.to_dict(),
                        fold=fold,
                        adapter=adapter,
                        params=params,
                        seed=seed,
                        threads=threads,
                        metrics=metrics,
                        suite=suite.name,
                        time_limit=time_limit or run.get("time_limit", 900.0),
                    )
                    if spec.trial_id not in seen:
                        seen.add(spec.trial_id)
                        specs.append(spec)
    return specs


def param_sets(run: dict, adapter: str) -> list[dict]:
    fixed = dict(run.get("params", {}).get(adapter, {}))
    grid = run.get("grid", {}).get(adapter, {})
    if not grid:
        return [fixed]
    keys = sorted(grid)
    return [{**fixed, **dict(zip(keys, combo, strict=True))} for combo in itertools.product(
        *(grid[k] for k in keys)
    )]
