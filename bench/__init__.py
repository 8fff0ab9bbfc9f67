"""recbench: fair, reproducible, fast benchmarks of classic recommender libraries.

The public API is what ``__all__`` names; it loads on first use, so ``import bench`` stays
cheap (no numpy, no pandas)::

    import bench

    records = bench.run("ci", results="ci-results")     # as `python -m bench run --suite ci`
    frame = bench.results.load("ci-results")             # the stored records as a DataFrame
    data = bench.load_dataset("ml-100k")                 # or "csv:PATH", "synthetic:..."

* ``run``: a suite (name or ``.toml`` path) or a list of ``TrialSpec`` through the runner,
  in-memory adapter classes included (``models=``);
* ``Experiment``: models x datasets x folds x seeds on one split and metric spec, run
  through the same runner; ``Experiment(...).run()`` returns the records as a DataFrame;
* ``results``: the stored records as DataFrames (``results.load``);
* ``Adapter``: the contract a library wrapper implements (``adapters/<library>.py``);
* ``TrialSpec``, ``SplitSpec``, ``MetricSpec``: one trial, its split protocol, its metrics;
* ``Dataset``, ``Ratings``, ``TrainSet``: the data model; ``load_dataset(name)`` reads one;
* ``synthetic`` (``synthetic.generate``): seeded MovieLens-like data;
* ``metrics`` and ``ranking``: the metric functions and the full-catalogue top-K the
  harness scores with; ``threads``: thread limits for code outside a trial
  (``threads.limited``).

Everything else is internal and may change without notice.  The package reads as the
pipeline, one sub-package per stage: ``data`` (datasets in), ``splitting``, ``models`` and
``kernels`` (recbench's own models), ``evaluation``, ``execution`` (suites, trials,
executors, the results store), ``reporting`` and ``site``; ``cli`` is the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, attribute; None: the module itself)
_PUBLIC: dict[str, tuple[str, str | None]] = {
    "Adapter": ("bench.adapter", "Adapter"),
    "Dataset": ("bench.data.model", "Dataset"),
    "Experiment": ("bench.experiment", "Experiment"),
    "MetricSpec": ("bench.evaluation.evaluate", "MetricSpec"),
    "Ratings": ("bench.data.model", "Ratings"),
    "SplitSpec": ("bench.splitting.splits", "SplitSpec"),
    "TrainSet": ("bench.data.model", "TrainSet"),
    "TrialSpec": ("bench.execution.trial", "TrialSpec"),
    "load_dataset": ("bench.data.datasets", "load"),
    "metrics": ("bench.evaluation.metrics", None),
    "ranking": ("bench.evaluation.ranking", None),
    "results": ("bench.results", None),
    "run": ("bench.experiment", "run"),
    "synthetic": ("bench.data.synthetic", None),
    "threads": ("bench.execution.threads", None),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Public names load on first use (PEP 562)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
