"""``python -m bench report``: the leaderboard and the figures of stored records.

The one place that hands significance marks (``significance.Marks``, bound to the results
dirs holding the per-user files) to the leaderboard and the bar charts, so those readers
never import each other.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench import registry, store, suites
from bench.errors import UserError
from bench.reporting import leaderboard, protocol, rerun, significance


def marks(sources: Iterable[str | Path]) -> rerun.RerunMarks:
    """Significance marks from the per-user files next to the record files ``sources``,
    and re-run marks from their results dirs' ``reruns/`` (``bench.reporting.rerun``)."""
    dirs = store.results_dirs(sources)
    return rerun.RerunMarks(significance.Marks.of(dirs), rerun.load(dirs))


def figures(records: list[dict], sources: Iterable[str | Path], out_dir: Path) -> list[Path]:
    """Every figure of ``records`` as PNG under ``out_dir``; returns the paths written."""
    from bench.reporting.figures import render_all  # matplotlib: only when figures are drawn

    dirs = store.results_dirs(sources)
    return render_all(records, dirs, out_dir, mark=significance.Marks.of(dirs).table)


def leaderboard_text(records: list[dict], sources: list[str], command: str, **options) -> str:
    """The markdown leaderboard (``leaderboard.render``; ``options``: ``figures``, ``stale``)
    with significance marks from the per-user files of the sources' results dirs."""
    both = marks(sources)
    text = leaderboard.render(records, sources, command, marks=both, **options)
    for extra in (protocol.findings(records),
                  rerun.section(records, both.reruns, leaderboard.sort_column)):
        if extra:
            text = text.rstrip("\n") + "\n\n" + extra
    return text


def reproduce_command(records: list[dict], results: str | Path | None = None,
                      adapters: Sequence[str] | None = None) -> str:
    """The shell command(s) that recompute ``records``, arguments quoted.

    ``--dataset`` is kept when the records cover other datasets than the suite file names;
    ``--adapter`` when they hold fewer adapters than the suite runs here: the patterns
    ``adapters`` as the user gave them to ``run`` when those match every recorded adapter,
    else the recorded adapters by name; ``--results`` when ``results`` is given (the
    caller leaves out the default)."""
    parts = []
    for suite in sorted({r.get("suite", "") for r in records}):
        mine = [r for r in records if r.get("suite", "") == suite]
        used = sorted({r["dataset"] for r in mine})
        # a suite given as a .toml path is named by that path (its stem is no suite name)
        given = sorted({r["suite_file"] for r in mine if isinstance(r.get("suite_file"), str)})
        ref = given[-1] if given else suite
        try:
            loaded = suites.load(ref)
            declared = {d for run in loaded.runs for d in run["datasets"]}
            runs_here = suite_adapters(loaded)
        except UserError:
            declared, runs_here = set(), None
        argv = ["python", "-m", "bench", "run", "--suite", ref]
        if set(used) != declared:
            for name in used:
                argv += ["--dataset", name]
        names = sorted({r["adapter"] for r in mine})
        if runs_here is None or not runs_here <= set(names):
            patterns = list(adapters or [])
            covered = patterns and all(any(fnmatch.fnmatch(n, p) for p in patterns)
                                       for n in names)
            for name in patterns if covered else names:
                argv += ["--adapter", name]
        if results is not None:
            argv += ["--results", str(results)]
        parts.append(shlex.join(argv))
    return " && ".join(parts)


def suite_adapters(suite: suites.Suite) -> set[str]:
    """The adapters a suite runs here (its patterns matched against the available ones,
    less excluded and lacking a required capability), quietly: nothing is logged."""
    available = registry.available()
    out: set[str] = set()
    for run in suite.runs:
        for name in available:
            if (any(fnmatch.fnmatch(name, p) for p in run["adapters"])
                    and not any(fnmatch.fnmatch(name, x) for x in run.get("exclude", []))
                    and all(getattr(registry.get(name), cap, False)
                            for cap in run.get("requires", []))):
                out.add(name)
    return out
