"""The command line's arguments: ``build_parser`` (every command, its options and help),
used by ``bench.cli``, which runs the commands.

``--help`` descriptions and examples come from ``bench.clihelp``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from bench import clihelp
from bench.errors import UserError
from bench.execution import spark_master
from bench.reporting import compare, report

#: a user's runs land here, ignored by git (the published results are results/published)
DEFAULT_RESULTS = Path("results/local")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    version = sys.modules[__package__].__version__  # bench, loaded before its cli (no loop)
    prog = prog or clihelp.program_name()
    p = Parser(prog=prog, description="recbench: fair benchmarks of recommender libraries",
               epilog=f"`{prog} COMMAND --help` describes a command and shows examples.")
    p.add_argument("--version", action="version", version=f"recbench {version}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 - argparse's
        return sub.add_parser(name, help=help, description=clihelp.description(name),
                              epilog=clihelp.epilog(name, prog),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    run = command("run", help="run a suite (resumes an interrupted run)")
    run.add_argument("--suite", required=True, help="suite name (see `list`) or a .toml file")
    run.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    run.add_argument("--adapter", action="append", help="only adapters matching (repeatable)")
    run.add_argument(
        "--threads", type=int, help="threads per trial (default: the suite's, else all cores)"
    )
    run.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                     help=f"results directory (default {DEFAULT_RESULTS}, ignored by git)")
    run.add_argument("--time-limit", type=float, help="seconds per trial (default: suite's)")
    run.add_argument("--memory-limit-mb", type=int, help="address-space limit per trial")
    run.add_argument("--retry-failed", action="store_true", help="re-run failed trials too")
    run.add_argument(
        "--no-admission", action="store_true",
        help="run trials even when their estimated memory or time exceeds the limit",
    )
    run.add_argument("--no-report", action="store_true", help="do not rewrite the leaderboard")
    run.add_argument("--no-plots", action="store_true", help="leaderboard without figures")
    run.add_argument("--no-topk", action="store_true",
                     help="do not store each trial's top-K lists (runs/topk/, for metrics "
                     "computed later: bench.results.topk)")
    # --- executors (bench.execution.executors) ---
    run.add_argument("--executor", choices=("serial", "local", "dask"), default="serial",
                     help="where trials run: one at a time here (default), --jobs worker "
                     "processes here, or a Dask cluster")
    run.add_argument("--jobs", type=int, help="trials at once (local: worker processes; dask "
                     "without --scheduler: LocalCluster workers); a suite may pin jobs = 1")
    run.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 "
                     "(default: $RECBENCH_DASK_SCHEDULER, else a LocalCluster started here)")
    # --- end executors ---
    spark_master.add_arguments(run)  # --spark-master, --spark-data-dir

    tune = command(
        "tune", help="only the validation trials of a suite's tuned runs; writes tuned/<suite>.json"
    )
    for action in run._actions:
        if action.dest != "help":
            tune._add_action(action)

    cmp = command("compare", help="regression check: exit 1 when CURRENT is worse")
    cmp.add_argument("baseline", type=Path, help="results dir or .jsonl file")
    cmp.add_argument("current", type=Path, help="results dir or .jsonl file")
    cmp.add_argument(
        "--tolerance", action="append", default=[], metavar="METRIC=VALUE",
        help="absolute tolerance, e.g. rmse=0.01 or ndcg@10=0.002 (repeatable)",
    )
    cmp.add_argument(
        "--time-ratio", type=positive_ratio, default=compare.DEFAULT_TIME_RATIO,
        help="flag a fit time that grew by more than this factor (calibrated)",
    )
    cmp.add_argument("--all-rows", action="store_true", help="show unchanged metrics too")
    cmp.add_argument("--missing", choices=compare.MISSING_POLICIES, default="fail",
                     help="a baseline trial missing from CURRENT: fail (default: exit 1) or "
                     "warn (listed, exit 0); never counted as a regression")

    lay = command(
        "write-layout", help="write a dataset (e.g. synthetic:...) in a real release's file layout"
    )
    lay.add_argument("layout", help="ml-1m, ml-25m, ml-32m or netflix-prize")
    lay.add_argument("--data", required=True, help="dataset to write, e.g. synthetic:users=...")
    lay.add_argument("--out", type=Path, required=True, help="directory for the files")
    lay.add_argument("--overwrite", action="store_true",
                     help="replace the files of a non-empty --out (refused otherwise)")

    listing = command("list", help="datasets, adapters and suites, and whether each is available")
    show = command("show", help="an adapter's parameters, whose defaults, its search space")
    show.add_argument("adapter", help="adapter name, e.g. surprise.SVD (see `list`)")
    for parser in (listing, show):
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")

    desc = command("describe", help="dataset characteristics (users, items, density, Gini, "
                   "degree quantiles) and a degree-distribution figure")
    desc.add_argument("datasets", nargs="+", metavar="DATASET",
                      help="registry name, csv:PATH or synthetic:... (several: side by side)")
    desc.add_argument("--figure", type=Path, default=DEFAULT_RESULTS / "degrees.png",
                      help=f"PNG of the degree distributions (default "
                      f"{DEFAULT_RESULTS / 'degrees.png'})")
    desc.add_argument("--no-figure", action="store_true", help="print the table only")

    rep = command("report", help="rebuild the leaderboard from stored results only")
    rep.add_argument("--results", type=Path, action="append", help="results dirs or .jsonl files")
    rep.add_argument("--output", type=Path, help="default: <first results dir>/LEADERBOARD.md "
                     "(leaderboard.csv / .tex with --format; with --html: the directory "
                     "<first results dir>/site); - for stdout; a symlink, fifo or device is "
                     "written through, never replaced")
    rep.add_argument("--format", choices=tuple(report.FILES), default="md",
                     help="md: the leaderboard with figures (default); csv / latex: its tables "
                     "(one row per leaderboard row, mean and 95%% half-width)")
    rep.add_argument("--no-plots", action="store_true", help="skip the PNG figures (faster)")
    rep.add_argument("--html", action="store_true",
                     help="write the static results site (a directory) instead of the markdown")
    rep.add_argument("--compare", type=Path, metavar="BASELINE",
                     help="with --html: add a page comparing BASELINE (dir or .jsonl) to these")
    add_verbosity(p, default=0)
    for command in sub.choices.values():  # after the command too: `bench run -q ...`
        add_verbosity(command, default=argparse.SUPPRESS)
    return p


def add_verbosity(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("-v", "--verbose", action="count", default=default,
                   help="more detail on stderr")
    p.add_argument("-q", "--quiet", action="count", default=default,
                   help="only warnings and errors on stderr")


def positive_ratio(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value
