"""Command line: ``python -m bench run | list | report``.

Exit codes: 0 success; 1 some trials failed or timed out (the others are recorded), or
every trial was skipped; 2 usage or input error, reported as one line on stderr before
anything is written; 3 the results store cannot be written (full disk, I/O error): one
line, nothing recorded for the trial at hand, and the same command resumes later.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import logging
import math
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from bench import clihelp
from bench.cliargs import DEFAULT_RESULTS, build_parser
from bench.errors import DatasetUnavailable, StoreFault, UserError
from bench.evaluation import tuning
from bench.execution import registry, spark_master, store, suites
from bench.reporting import compare, report
from bench.reporting import datasets as dataset_info
from bench.splitting import splits

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3
#: below this address-space limit (MB) a worker cannot import numpy, numba and the libraries
MIN_MEMORY_LIMIT_MB = 1024
#: a trial's time limit must leave time to import the libraries and load the data
MIN_TIME_LIMIT = 1.0


#: stdout's reader went away (``list | head -3``): 128 + SIGPIPE, as for a tool it ends
EXIT_BROKEN_PIPE = 141

_log = logging.getLogger("bench.cli")
#: loggers of our own code; other libraries' loggers stay at WARNING
OWN_LOGGERS = ("bench", "recbench_adapters")


class MessageFormatter(logging.Formatter):
    """Progress and notes as plain lines; warnings and errors prefixed with their level."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


class StderrHandler(logging.StreamHandler):
    """The CLI's one handler (a class of its own so that reconfiguring replaces it)."""


def configure_logging(verbosity: int = 0) -> None:
    """What the user sees on stderr: our INFO lines (progress, notes) and everyone's warnings;
    ``-q`` leaves warnings only, ``-v`` adds our debug lines.  Idempotent."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    handler = StderrHandler(sys.stderr)
    handler.setFormatter(MessageFormatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)


def log(msg: str) -> None:
    _log.info(msg)


def cmd_run(args: argparse.Namespace) -> int:
    return run_suite(args)[0]


def run_suite(args: argparse.Namespace) -> tuple[int, list[dict]]:
    """``run`` / ``tune`` of the suite ``args.suite``: the exit code, and the latest record of
    each of its trials (tuned rows included), run now or recorded before (``bench.run``)."""
    from bench.execution.runner import run_trials

    check_run_options(args)
    suite = suites.load(args.suite)
    suites.check_adapter_names(suite)
    args.threads = args.threads or suite.threads or os.cpu_count() or 1
    for pattern in args.adapter or []:
        if not fnmatch.filter(registry.available(pattern), pattern):
            registry.get(pattern)  # unknown or unavailable: one clear line
    def expand(**tuned: Any) -> list:
        return spark_master.place(suites.expand(
            suite, threads=args.threads, datasets=args.dataset, adapters=args.adapter,
            time_limit=args.time_limit, **tuned), args.cluster)

    specs = expand()
    if not specs:
        raise UserError(f"suite {suite.name!r} has no trials for the given filters")
    run_path = store.run_file(args.results, suite.name)
    options = prepare_run(specs, args)
    log(f"suite {suite.name}: {len(specs)} trials, {args.threads} thread(s), results in {run_path}")
    options.update(executor_options(args, suite, run_path))
    if args.command == "tune":
        specs = [s for s in specs if s.stage == "validation"]
    run_trials(specs, args.results, run_path, **options)
    latest = store.latest(store.read(run_path))
    chosen, summary = suites.tuned_params(suite, latest)
    if summary:
        tuning.write_summary(tuned_file(args.results, suite.name), summary)
        log(f"tuned parameters: {tuned_file(args.results, suite.name)}")
    if args.command == "run" and chosen:
        tuned = expand(tuned=chosen)
        log(f"suite {suite.name}: {len(tuned)} trials with tuned parameters")
        run_trials(tuned, args.results, run_path, **options)
        specs = specs + tuned
    return finish_run(specs, args, run_path)


def run_specs(specs: list, args: argparse.Namespace) -> tuple[int, list[dict]]:
    """Trial specs built by hand, run as ``run`` runs a suite's (the same checks, resumption
    and report), recorded in ``runs/<suite>.jsonl`` of their first spec's suite."""
    from bench.execution.runner import run_trials

    check_run_options(args)
    if not specs:
        raise UserError("no trial specs to run")
    run_path = store.run_file(args.results, specs[0].suite or "api")
    specs = spark_master.place(specs, args.cluster)
    options = prepare_run(specs, args)
    log(f"{len(specs)} trials, results in {run_path}")
    options.update(executor_options(args, None, run_path))
    run_trials(specs, args.results, run_path, **options)
    return finish_run(specs, args, run_path)


def prepare_run(specs: list, args: argparse.Namespace) -> dict:
    """Everything checked before any trial runs: each adapter's parameters, and each dataset
    fetched and parsed once (bad input stops the run here; an unavailable dataset becomes
    skipped trials with one line of explanation).  The runner's options."""
    from bench.data import datasets
    from bench.execution.trial import build_adapter

    for s in {(s.adapter, repr(sorted(s.params.items()))): s for s in specs}.values():
        build_adapter(s.adapter, s.params, s.seed, s.threads)  # bad parameters: exit 2 now
    skip_reasons: dict[str, str] = {}
    fingerprints: dict[str, str] = {}  # resumption redoes trials recorded on other content
    for name in dict.fromkeys(s.dataset for s in specs):
        try:
            dataset = datasets.load(name)
        except DatasetUnavailable as exc:
            skip_reasons[name] = str(exc)
            log(f"skipping dataset {name}: {exc}")
            continue
        check_usable(name, dataset)
        check_thresholds(name, dataset, [s for s in specs if s.dataset == name])
        fingerprints[name] = dataset.fingerprint()[:16]
        if not args.no_admission:
            skip_reasons.update(not_admitted(
                dataset, [s for s in specs if s.dataset == name], args.results,
                args.memory_limit_mb))
        # A protocol the data cannot satisfy (more folds than ratings, a time split
        # without timestamps) is an input error: find it before any trial is recorded.
        for split in dict.fromkeys(s.split for s in specs if s.dataset == name):
            splits.assign(dataset.ratings, split)
        # after every check: input refused up front leaves the results directory alone
        dataset_info.save(args.results, name, dataset)  # the leaderboard's Datasets section
        del dataset
    return {"skip_reasons": skip_reasons, "fingerprints": fingerprints, "log": log,
            "retry_failed": args.retry_failed, "memory_limit_mb": args.memory_limit_mb,
            "keep_topk": not getattr(args, "no_topk", False)}


def finish_run(specs: list, args: argparse.Namespace, run_path: Path) -> tuple[int, list[dict]]:
    """After the trials: the leaderboard (unless ``--no-report``), the exit code, and the
    latest record of each spec."""
    latest = store.latest(store.read(run_path))
    bad = [latest[s.trial_id] for s in specs if latest.get(s.trial_id, {}).get("status") in (
        "failed", "timeout")]
    mine = [latest[s.trial_id] for s in specs if s.trial_id in latest]
    if not args.no_report:
        try:
            out = report.write([args.results], None, plots=not args.no_plots,
                               adapters=args.adapter, default_results=DEFAULT_RESULTS)
        except StoreFault as exc:
            raise StoreFault(f"{exc}; the trials are recorded: `python -m bench report` "
                             "rewrites the leaderboard once this is fixed") from None
        log(f"leaderboard: {out}")
    if bad:
        log(f"{len(bad)} of {len(specs)} trials failed or timed out (see {run_path})")
        return EXIT_FAILED_TRIALS, mine
    if mine and all(r["status"] == "skipped" for r in mine):
        reasons = sorted({str(r.get("error") or "").split(";")[0] for r in mine})
        log(f"every one of the {len(mine)} trials was skipped: {' | '.join(reasons)[:300]}")
        return EXIT_FAILED_TRIALS, mine
    return EXIT_OK, mine


def not_admitted(dataset, specs: list, results: Path, memory_limit_mb: int | None
                 ) -> dict[str, str]:
    """Trial id -> why it cannot fit the memory or time limit (``bench.execution.admission``)."""
    from bench.execution import admission
    from bench.execution.trial import build_adapter

    history = store.load([results]) if Path(results).is_dir() else []
    budget, label = admission.memory_budget(memory_limit_mb)
    reasons: dict[str, str] = {}
    for spec in specs:
        shape = admission.train_shape(dataset.n_users, dataset.n_items, len(dataset.ratings),
                                      spec.split.to_dict())
        model = build_adapter(spec.adapter, spec.params, spec.seed, spec.threads)
        reason = admission.refusal(admission.estimate(model, shape, history), budget,
                                   spec.time_limit, label)
        if reason is not None:
            reasons[spec.trial_id] = reason
    if reasons:
        log(f"{len(reasons)} trial(s) on {dataset.name} not admitted: "
            f"{next(iter(reasons.values()))}")
    return reasons


def check_run_options(args: argparse.Namespace) -> None:
    """Every numeric option of run / tune, before anything is read or written."""
    cores = os.cpu_count() or 1
    if args.threads is not None and not 1 <= args.threads <= cores:
        raise UserError(f"--threads must be between 1 and the {cores} cores of this machine, "
                        f"got {args.threads}")
    if args.time_limit is not None and not (
        math.isfinite(args.time_limit) and args.time_limit >= MIN_TIME_LIMIT
    ):
        raise UserError(f"--time-limit must be a finite number of seconds >= {MIN_TIME_LIMIT:g}, "
                        f"got {args.time_limit}")
    if args.memory_limit_mb is not None and args.memory_limit_mb < MIN_MEMORY_LIMIT_MB:
        raise UserError(f"--memory-limit-mb must be at least {MIN_MEMORY_LIMIT_MB} (the worker "
                        f"needs that much address space to import the libraries), "
                        f"got {args.memory_limit_mb}")
    # --- executors ---
    if args.jobs is not None and not 1 <= args.jobs <= 1024:
        raise UserError(f"--jobs must be between 1 and 1024, got {args.jobs}")
    if args.jobs is not None and args.jobs > 1 and args.executor == "serial":
        raise UserError("--jobs needs --executor local or --executor dask (serial runs one "
                        "trial at a time)")
    if args.scheduler and args.executor != "dask":
        raise UserError("--scheduler needs --executor dask")
    if args.scheduler:
        from bench.execution.dask_address import check_address

        check_address(args.scheduler)
    args.cluster = spark_master.resolve(args)  # --spark-master / $RECBENCH_SPARK_MASTER
    if args.cluster:
        log(spark_master.describe(args.cluster))
    if args.executor == "dask" and importlib.util.find_spec("distributed") is None:
        raise UserError("--executor dask needs Dask: pip install -e '.[dask]'")
    # --- end executors ---
    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise UserError(f"--results {results} is a file, not a directory")
    existing = next(p for p in (results, *results.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--results {results} is not writable ({existing} is read-only "
                        "or not a directory)")


def executor_options(args: argparse.Namespace, suite, run_path: Path) -> dict:
    """--executor / --jobs / --scheduler as the runner's ``executor`` and ``jobs``."""
    from bench.execution import executors

    jobs = args.jobs
    pinned = getattr(suite, "jobs", None)
    if pinned is not None and args.executor != "serial" and (jobs is None or jobs > pinned):
        log(f"suite {suite.name} pins jobs = {pinned} (timing-sensitive): {pinned} trial(s) "
            "at once")
        jobs = pinned
    scheduler = args.scheduler or os.environ.get(executors.ENV_SCHEDULER) or None
    executor = executors.make_executor(args.executor, run_path.with_suffix(".log"),
                                       jobs=jobs, scheduler=scheduler)
    if args.executor != "serial":
        where = scheduler or ("a LocalCluster" if args.executor == "dask" else "this machine")
        log(f"executor {args.executor} on {where}" + (f", {jobs} job(s)" if jobs else ""))
    return {"executor": executor, "jobs": jobs}


def check_thresholds(name: str, dataset, specs: list) -> None:
    """A relevance threshold outside the data's rating scale makes nothing (or everything)
    relevant: refuse it rather than print a table of empty ranking metrics."""
    if getattr(dataset, "implicit", False):
        return  # implicit-only data: every test interaction is relevant
    low, high = dataset.rating_scale
    for threshold in {s.metrics.threshold for s in specs}:
        if threshold is not None and not low <= threshold <= high:
            raise UserError(
                f"relevance threshold {threshold:g} is outside the rating scale {low:g}..{high:g} "
                f"of dataset {name}: set metrics.threshold within the scale, or \"none\" to "
                "count every test item as relevant"
            )


def check_usable(name: str, dataset) -> None:
    """A dataset no recommender comparison can be run on is an input error."""
    if dataset.n_users < 2 or dataset.n_items < 2:
        raise UserError(
            f"dataset {name} has {dataset.n_users} user(s) and {dataset.n_items} item(s); "
            "a comparison needs at least 2 of each"
        )


def tuned_file(results: Path, suite: str) -> Path:
    return Path(results) / "tuned" / f"{suite}.json"


def cmd_report(args: argparse.Namespace) -> int:
    try:
        return report_command(args)
    except BrokenPipeError:
        raise  # --output - read by `head`: handled in main, not a disk fault
    except (OSError, StoreFault) as exc:  # full disk, read-only results: one line, exit 3
        raise report.fault(exc) from None


def report_command(args: argparse.Namespace) -> int:
    sources = args.results or [DEFAULT_RESULTS]
    if args.html:
        from bench import site

        if args.format != "md" or str(args.output) == "-":
            raise UserError("--html writes the site, a directory: not with --format or --output -")
        first = Path(sources[0])
        out = args.output or (first if first.is_dir() else first.parent) / "site"
        index = site.build(sources, out, args.compare, plots=not args.no_plots)
        log(f"site: {index}")
        return EXIT_OK
    if args.compare:
        raise UserError("--compare makes a page of the site: use it with --html "
                        "(or run `python -m bench compare BASELINE CURRENT`)")
    out = report.write(sources, args.output, plots=not args.no_plots, fmt=args.format,
                       default_results=DEFAULT_RESULTS)
    log(f"leaderboard: {out}" if args.format == "md" else f"tables ({args.format}): {out}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    sides, left_out = [], []
    for side, path in (("baseline", args.baseline), ("current", args.current)):
        files = store.files([path])
        if not files:
            raise UserError(f"no results found in {path}")
        fresh, stale = store.split_stale(store.load(files))  # as the leaderboard does
        sides.append(fresh)
        left_out += [f"{side}: {compare.describe(r)} (dataset fingerprint "
                     f"{r.get('dataset_fingerprint')})" for r in stale]
    result = compare.compare(
        sides[0], sides[1], compare.parse_tolerances(args.tolerance), args.time_ratio,
        missing=args.missing,
    )
    result.stale = left_out
    print(compare.render(result, only_changes=not args.all_rows))
    return EXIT_OK if result.ok else EXIT_FAILED_TRIALS


def cmd_write_layout(args: argparse.Namespace) -> int:
    from bench.data import datasets, formats

    if args.layout not in formats.WRITERS:
        raise UserError(f"unknown layout {args.layout!r}; known: "
                        f"{', '.join(sorted(formats.WRITERS))}")
    out = Path(args.out)
    before = check_layout_target(out, args.overwrite)
    dataset = datasets.load(args.data)
    try:
        name, toml = formats.write(dataset, args.layout, out)
    except OSError as exc:  # full disk, I/O error: remove what this run began to write
        for path in (out.iterdir() if out.is_dir() else []):
            if path.name not in before and path.is_file():
                path.unlink(missing_ok=True)
        raise StoreFault(f"cannot write {exc.filename or out}: {exc.strerror or exc}; the "
                         "files begun are removed") from None
    log(f"wrote {args.data} in the {args.layout} layout to {args.out}")
    log(f"load it through the {args.layout} parser as dataset {name} with "
        f"RECBENCH_DATASETS_PATH={toml.parent}")
    print(name)
    return EXIT_OK


def check_layout_target(out: Path, overwrite: bool) -> set[str]:
    """Names already in ``out``: refused when there are any (a user's real release, say)
    unless ``overwrite``; a file or an unwritable directory is refused too."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; write-layout writes a directory")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {out} is not writable ({existing} is read-only)")
    before = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if before and not overwrite:
        shown = ", ".join(sorted(before)[:3]) + (", ..." if len(before) > 3 else "")
        raise UserError(f"--out {out} is not empty (it holds {shown}); give a new or empty "
                        "directory, or --overwrite to replace its files")
    return before


def cmd_describe(args: argparse.Namespace) -> int:
    try:
        text, drawn = dataset_info.describe(args.datasets, None if args.no_figure else args.figure)
    except DatasetUnavailable as exc:
        raise UserError(str(exc)) from None
    print(text)
    if drawn is not None:
        log(f"figure: {drawn}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from bench.execution import catalog

    print(json.dumps(catalog.listing(), indent=2) if args.json else catalog.listing_text())
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from bench.execution import catalog

    info = catalog.adapter(args.adapter)  # unknown or unavailable: one line, exit 2
    print(json.dumps(info, indent=2) if args.json else catalog.adapter_text(info))
    return EXIT_OK


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled as Ctrl-C is (the running trial's worker is ended, nothing is
    recorded for it), so a terminated run leaves no worker behind."""


def on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        try:
            if not threading_main():
                return run_command(argv)
            previous = signal.signal(signal.SIGTERM, on_sigterm)
            try:
                return run_command(argv)
            finally:
                signal.signal(signal.SIGTERM, previous)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:  # stdout's reader went away (`list | head -3`): the Python docs'
        # recipe (devnull under stdout, so the last flush cannot fail), quiet, exit 141
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def run_command(argv: list[str]) -> int:
    # library modules log; this decides what the user sees (one line per message)
    configure_logging()
    prog = clihelp.program_name()
    try:
        args = build_parser(prog).parse_args(argv)
        configure_logging(args.verbose - args.quiet)
        commands = {
            "run": cmd_run,
            "tune": cmd_run,
            "list": cmd_list,
            "show": cmd_show,
            "describe": cmd_describe,
            "write-layout": cmd_write_layout,
            "report": cmd_report,
            "compare": cmd_compare,
        }
        return commands[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreFault as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORE
    except KeyboardInterrupt as exc:
        again = shlex.join([*prog.split(), *argv])
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{what}; re-run `{again}` to resume", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
