"""``python -m bench report``: the leaderboard and the figures of stored records.

The one place that hands significance marks (``significance.Marks``, bound to the results
dirs holding the per-user files) to the leaderboard and the bar charts, so those readers
never import each other.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path

from bench import describe, store, suites
from bench.errors import UserError
from bench.reporting import leaderboard, protocol, significance


def marks(sources: Iterable[str | Path]) -> significance.Marks:
    """Significance marks from the per-user files next to the record files ``sources``."""
    return significance.Marks.of(store.results_dirs(sources))


def figures(records: list[dict], sources: Iterable[str | Path], out_dir: Path) -> list[Path]:
    """Every figure of ``records`` as PNG under ``out_dir``; returns the paths written."""
    from bench.reporting.figures import render_all  # matplotlib: only when figures are drawn

    dirs = store.results_dirs(sources)
    return render_all(records, dirs, out_dir, mark=significance.Marks.of(dirs).table)


def leaderboard_text(records: list[dict], sources: list[str], command: str, **options) -> str:
    """The markdown leaderboard (``leaderboard.render``; ``options``: ``figures``, ``stale``)
    with significance marks from the per-user files of the sources' results dirs."""
    text = leaderboard.render(records, sources, command, marks=marks(sources), **options)
    for extra in (protocol.findings(records),
                  describe.leaderboard_section(records, store.results_dirs(sources))):
        if extra:
            text = text.rstrip("\n") + "\n\n" + extra
    return text


def reproduce_command(records: list[dict]) -> str:
    """The shell command(s) that recompute ``records``, arguments quoted; ``--dataset`` is
    kept when the records cover other datasets than the suite file names."""
    parts = []
    for suite in sorted({r.get("suite", "") for r in records}):
        used = sorted({r["dataset"] for r in records if r.get("suite", "") == suite})
        # a suite given as a .toml path is named by that path (its stem is no suite name)
        given = sorted({r["suite_file"] for r in records
                        if r.get("suite", "") == suite and isinstance(r.get("suite_file"), str)})
        ref = given[-1] if given else suite
        try:
            declared = {d for run in suites.load(ref).runs for d in run["datasets"]}
        except UserError:
            declared = set()
        argv = ["python", "-m", "bench", "run", "--suite", ref]
        if set(used) != declared:
            for name in used:
                argv += ["--dataset", name]
        parts.append(shlex.join(argv))
    return " && ".join(parts)
