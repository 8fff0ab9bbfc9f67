"""The Python entry point: ``bench.Experiment(...).run()`` and ``bench.run(...)``.

Both hand trial specs to the runner ``python -m bench run`` uses (the same checks, worker
processes, resumption, records, per-user and top-K files), so a trial gives the same record
whichever way it was started.  Models are registered adapter names or ``Adapter``
subclasses and instances defined in memory (a notebook, a script): those travel to the
worker processes pickled by value (``bench.execution.inline``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.adapter import Adapter
from bench.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from bench.evaluation.evaluate import MetricSpec
    from bench.execution.trial import TrialSpec
    from bench.splitting.splits import SplitSpec

#: what ``Experiment(models=...)`` takes: a name, (name, params), a class, an instance
Model = str | tuple[str, Mapping[str, Any]] | type[Adapter] | Adapter


def run(
    suite: str | Path | Sequence[Any],
    results: str | Path = "results/local",
    *,
    models: Sequence[type[Adapter] | Adapter] = (),
    datasets: Sequence[str] = (),
    adapters: Sequence[str] = (),
    threads: int | None = None,
    executor: str = "serial",
    jobs: int | None = None,
    retry_failed: bool = False,
    report: bool = False,
    topk: bool = True,
) -> list[dict]:
    """Run a suite as ``python -m bench run --suite SUITE`` does and return its records.

    ``suite`` is a suite name (``"ci"``), a path to a suite ``.toml`` file, or a list of
    ``TrialSpec`` (recorded in ``runs/<first spec's suite>.jsonl``).  ``models``: adapter
    classes (or instances: their class) defined in memory, usable by their ``name`` in
    the suite or the specs for this call.  The run resumes into ``results``: trials
    recorded there already are not run again.  ``datasets`` and ``adapters`` filter a
    suite as ``--dataset`` and ``--adapter`` do; ``report=True`` also rewrites
    ``LEADERBOARD.md``; ``topk=False`` stores no top-K lists (``--no-topk``).  Returns
    the latest record of each trial (a dict, the JSON object stored); input errors raise
    ``bench.errors.UserError``.
    """
    from bench import cli
    from bench.execution import inline

    specs = None if isinstance(suite, str | Path) else list(suite)
    argv = ["run", "--suite", "api" if specs is not None else str(suite),
            "--results", str(results), "--executor", executor]
    argv += [a for name in datasets for a in ("--dataset", name)]
    argv += [a for pattern in adapters for a in ("--adapter", pattern)]
    argv += ["--threads", str(threads)] if threads is not None else []
    argv += ["--jobs", str(jobs)] if jobs is not None else []
    argv += ["--retry-failed"] if retry_failed else []
    argv += [] if report else ["--no-report"]
    argv += [] if topk else ["--no-topk"]
    args = cli.build_parser().parse_args(argv)
    classes = [m if isinstance(m, type) else type(m) for m in models]
    with inline.registered(classes):
        _, records = cli.run_suite(args) if specs is None else cli.run_specs(specs, args)
    return records


class Experiment:
    """Models x datasets x folds x seeds on one split protocol and one metric spec, run
    through recbench's runner; ``run()`` returns the records as a DataFrame (the columns of
    ``bench.results.load``).  Like Cornac's ``Experiment(...).run()``.

    scikit-learn style: every argument is stored unchanged as an attribute; ``run`` sets
    ``records_`` (the record dicts) and returns the frame.

    * ``models``: registered adapter names (``"implicit.ALS"``), ``(name, params)`` pairs,
      ``Adapter`` subclasses (their default parameters) or instances (the parameters they
      were built with that differ from the defaults).  Classes and instances may be
      defined in memory, e.g. in a notebook: they need a ``name`` (``"mylib.Model"``) no
      registered adapter has.  Seed and threads come from the experiment.
    * ``datasets``: a name or names (``"ml-100k"``, ``"csv:PATH"``, ``"synthetic:..."``).
    * ``split``: a ``SplitSpec`` or its dict (default: random 80/20, seed 0); every fold
      of it runs unless ``folds`` names some.
    * ``metrics``: a ``MetricSpec`` or its dict (default: NDCG & co @10, relevant >= 4).
    * ``seeds``: model seeds (a model whose results do not depend on the seed runs once).
    * ``results``, ``name``: records go to ``<results>/runs/<name>.jsonl``; trials already
      recorded there are not run again.
    * ``threads``, ``executor`` (``"serial"``, ``"local"``, ``"dask"``), ``jobs``,
      ``time_limit``, ``topk``: as the CLI's ``--threads`` ... ``--no-topk``.
    """

    def __init__(
        self,
        models: Sequence[Model],
        datasets: str | Sequence[str] = "ml-100k",
        split: SplitSpec | Mapping[str, Any] | None = None,
        metrics: MetricSpec | Mapping[str, Any] | None = None,
        *,
        folds: Sequence[int] | None = None,
        seeds: Sequence[int] = (0,),
        results: str | Path = "results/local",
        name: str = "experiment",
        threads: int = 1,
        executor: str = "serial",
        jobs: int | None = None,
        time_limit: float = 900.0,
        topk: bool = True,
    ) -> None:
        self.models = models
        self.datasets = datasets
        self.split = split
        self.metrics = metrics
        self.folds = folds
        self.seeds = seeds
        self.results = results
        self.name = name
        self.threads = threads
        self.executor = executor
        self.jobs = jobs
        self.time_limit = time_limit
        self.topk = topk

    def specs(self) -> list[TrialSpec]:
        """The trial specs ``run`` runs (in-memory classes need not be registered here)."""
        from bench.evaluation.evaluate import MetricSpec
        from bench.execution.trial import TrialSpec
        from bench.splitting.splits import SplitSpec

        split = self.split if isinstance(self.split, SplitSpec) else SplitSpec.from_dict(
            dict(self.split or {}))
        metrics = self.metrics if isinstance(self.metrics, MetricSpec) else (
            MetricSpec.from_dict(dict(self.metrics or {})))
        datasets = [self.datasets] if isinstance(self.datasets, str) else list(self.datasets)
        folds = split.folds if self.folds is None else list(self.folds)
        unknown = sorted(set(folds) - set(split.folds))
        if unknown:
            raise UserError(f"split {split.label} has folds {split.folds}, not {unknown}")
        if not self._entries() or not datasets or not list(self.seeds):
            raise UserError("an Experiment needs at least one model, dataset and seed")
        local = {getattr(cls, "name", ""): cls for cls in self._classes()}
        specs: dict[str, TrialSpec] = {}  # by trial id: a model listed twice runs once
        for entry in self._entries():
            adapter, params, cls = _model(entry, local)
            seeds = list(self.seeds) if cls.stochastic else list(self.seeds)[:1]
            for dataset in datasets:
                for seed in seeds:
                    for fold in folds:
                        spec = TrialSpec(
                            dataset, split, fold, adapter, params, seed=seed,
                            threads=self.threads, metrics=metrics, suite=self.name,
                            time_limit=self.time_limit)
                        specs.setdefault(spec.trial_id, spec)
        return list(specs.values())

    def run(self) -> pd.DataFrame:
        """Run the trials (resuming into ``results``) and return their records as a
        DataFrame, one row per trial; ``records_`` keeps the dicts."""
        from bench import results

        self.records_ = run(self.specs(), self.results, models=self._classes(),
                            threads=self.threads, executor=self.executor, jobs=self.jobs,
                            topk=self.topk)
        return results.frame(self.records_)

    def _entries(self) -> list[Model]:
        """``models`` as a list (one model may be given alone)."""
        one = isinstance(self.models, str | type | Adapter) or (
            isinstance(self.models, tuple) and len(self.models) == 2
            and isinstance(self.models[0], str) and isinstance(self.models[1], Mapping))
        return [self.models] if one else list(self.models)  # type: ignore[list-item]

    def _classes(self) -> list[type[Adapter]]:
        """The adapter classes given as classes or instances (maybe in memory)."""
        return [m if isinstance(m, type) else type(m) for m in self._entries()
                if not isinstance(m, str | tuple)]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"Experiment({shown})"


def _model(entry: Model, local: Mapping[str, type[Adapter]]) -> tuple[str, dict, type[Adapter]]:
    """(adapter name, parameters of the trial, adapter class) of one ``models`` entry;
    ``local``: the in-memory classes of the experiment by name."""
    from bench.execution import registry

    if isinstance(entry, str):
        return entry, {}, local.get(entry) or registry.get(entry)
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
        name, params = entry
        return name, dict(params), local.get(name) or registry.get(name)
    if isinstance(entry, type) and issubclass(entry, Adapter):
        return entry.name, {}, entry
    if isinstance(entry, Adapter):
        cls = type(entry)
        defaults = cls.default_params()
        params = {k: v for k, v in entry.get_params().items()
                  if k not in ("seed", "threads") and (
                      k not in defaults or not _equal(v, defaults[k]))}
        return cls.name, params, cls
    raise UserError(f"Experiment models are adapter names, (name, params) pairs, Adapter "
                    f"classes or instances; got {entry!r}")


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - e.g. arrays: compare as different
        return False

