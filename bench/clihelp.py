"""What ``--help`` says of each command: a description and examples (used by ``bench.cli``).

``{prog}`` in an example is how the user started recbench (``recbench`` or
``python -m bench``), so the examples can be pasted as shown.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

#: command -> (description, examples)
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "run": (
        "Run a suite of trials (every adapter x dataset x split x fold x seed it declares), "
        "record each trial in <results>/runs/<suite>.jsonl, then rewrite the leaderboard.\n"
        "Trials already recorded are not redone, so an interrupted run resumes with the "
        "same command.",
        (
            "{prog} run --suite smoke",
            "{prog} run --suite quick --adapter 'surprise.*' --threads 1",
            "{prog} run --suite all --results results/mine --no-report",
            "{prog} run --suite quick --executor dask --jobs 2",
        ),
    ),
    "tune": (
        "Run only the validation trials of a suite's tuned runs (test rows are never read) "
        "and write the chosen parameters to <results>/tuned/<suite>.json.",
        ("{prog} tune --suite all --adapter 'recbench.*'",),
    ),
    "compare": (
        "Regression check between two result sets: trials are matched by what defines them "
        "(dataset, split, fold, adapter, parameters, seed, metric options), quality metrics "
        "by absolute tolerance and fit times by their ratio to the calibration workload.\n"
        "Exit 1 on a regression, on a trial that failed now, or (with --missing fail, the "
        "default) on a baseline trial missing from CURRENT; missing trials are listed apart "
        "from regressions.",
        (
            "{prog} compare results/baseline results/local",
            "{prog} compare results/baseline ci-results --tolerance ndcg@10=0.002 "
            "--time-ratio 3",
            "{prog} compare results/baseline partial-run --missing warn",
        ),
    ),
    "write-layout": (
        "Write a dataset (e.g. synthetic:...) in the file layout of a real release, with a "
        "dataset TOML that reads it through that release's parser. A non-empty --out is "
        "refused unless --overwrite.",
        ("{prog} write-layout ml-1m --data synthetic:users=6000,items=3700,ratings=1000000,"
         "seed=0 --out /tmp/ml1m-like",),
    ),
    "list": (
        "Datasets, adapters and suites, and whether each is available here (a dataset "
        "cached, downloadable or placed by hand; an adapter's library installed). --json "
        "prints the same as one JSON object.",
        ("{prog} list", "{prog} list --json"),
    ),
    "show": (
        "An adapter's parameters with their defaults, whose defaults they are (the wrapped "
        "library's or recbench's), and the search space its tuned runs explore.",
        ("{prog} show surprise.SVD", "{prog} show implicit.ALS --json"),
    ),
    "describe": (
        "Dataset characteristics, one column per dataset: users, items, ratings, density, "
        "Gini of item popularity and of user activity, percentiles of ratings per user and "
        "per item, mean rating; and a log-log figure of both degree distributions (share of "
        "users / items with at least x ratings), every dataset a line. Any dataset name works: "
        "a registry name, csv:PATH, synthetic:..., synthetic:like=...",
        (
            "{prog} describe ml-100k synthetic:like=ml-100k,scale=1 --figure degrees.png",
            "{prog} describe csv:mine.csv synthetic:like=csv:mine.csv,scale=10 --no-figure",
        ),
    ),
    "report": (
        "Rebuild the leaderboard (markdown, with PNG figures beside it), the static results "
        "site (--html) or the tables as CSV / LaTeX (--format) from stored records only; "
        "nothing is re-run. --output - writes to stdout; a symlink, fifo or device given as "
        "--output is written through, never replaced.",
        (
            "{prog} report --results results/published --output LEADERBOARD.md",
            "{prog} report --format csv --output - | head",
            "{prog} report --format latex --output tables.tex --no-plots",
            "{prog} report --html --results results/local --compare results/baseline",
        ),
    ),
}


def program_name(argv0: str | None = None) -> str:
    """How the user started recbench, for usage lines and hints: ``recbench`` (the console
    script) or ``python -m bench`` (``sys.argv[0]`` is then ``.../bench/__main__.py``)."""
    name = Path(sys.argv[0] if argv0 is None else argv0).name
    return "recbench" if name in ("recbench", "recbench.exe") else "python -m bench"


def description(command: str) -> str:
    """The command's description, wrapped (``RawDescriptionHelpFormatter`` keeps lines)."""
    return "\n\n".join(textwrap.fill(p, 79) for p in COMMANDS[command][0].split("\n"))


def epilog(command: str, prog: str) -> str:
    return "examples:\n" + "\n".join(f"  {e.format(prog=prog)}" for e in COMMANDS[command][1])
