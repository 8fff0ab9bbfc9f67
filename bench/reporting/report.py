"""``python -m bench report``: the leaderboard and the figures of stored records.

The one place that hands significance marks (``significance.Marks``, bound to the results
dirs holding the per-user files) to the leaderboard and the bar charts, so those readers
never import each other.  ``write`` is the command's markdown / CSV / LaTeX output
(``--output`` destinations: ``bench.reporting.output``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.errors import StoreFault, UserError
from bench.execution import registry, store, suites
from bench.reporting import datasets, leaderboard, protocol, rerun, significance
from bench.reporting import output as destination

log = logging.getLogger(__name__)
#: report --format: the default name of its output in the first results dir
FILES = {"md": "LEADERBOARD.md", "csv": "leaderboard.csv", "latex": "leaderboard.tex"}


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
                  rerun.section(records, both.reruns, leaderboard.sort_column),
                  datasets.leaderboard_section(records, store.results_dirs(sources))):
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
    out: set[str] = set()
    for run in suite.runs:
        available = sorted({n for p in run["adapters"] for n in registry.available(p)})
        for name in available:
            if (any(fnmatch.fnmatch(name, p) for p in run["adapters"])
                    and not any(fnmatch.fnmatch(name, x) for x in run.get("exclude", []))
                    and all(getattr(registry.get(name), cap, False)
                            for cap in run.get("requires", []))):
                out.add(name)
    return out


def write(sources: list[Path], output: Path | None, plots: bool = True, fmt: str = "md",
          adapters: list[str] | None = None, default_results: Path | None = None) -> str:
    """LEADERBOARD.md (and figures under plots/ next to it), or the tables as CSV / LaTeX,
    from stored records only; returns where it went.  ``adapters``: the ``--adapter``
    patterns of the run, kept in the Reproduce line with the results dir (unless it is
    ``default_results``)."""
    files = store.files(sources)
    if not files:
        raise UserError(f"no results found in {', '.join(map(str, sources))}")
    records, stale = store.split_stale(store.load(files))
    if stale:
        log.info("%d record(s) computed on earlier contents of their dataset are left out of "
                 "the leaderboard (the leaderboard says which)", len(stale))
    first = Path(sources[0])
    out = output or (first if first.is_dir() else first.parent) / FILES[fmt]
    where = destination.check(out)
    inputs = {os.path.realpath(f) for f in files}
    if where != "stdout" and (out.suffix.lower() == ".jsonl" or os.path.realpath(out) in inputs
                              or (where == "file" and out.is_file()
                                  and store.parse_line(first_line(out)) is not None)):
        raise UserError(f"--output {out} is a results file, never overwritten; give the path "
                        f"of the {fmt} file (e.g. {FILES[fmt]})")
    if fmt != "md":
        from bench.reporting import export

        table = export.frame(records)
        text = export.to_csv(table) if fmt == "csv" else export.to_latex(table)
        destination.write(out, text.encode("utf-8"))
        return destination.describe(out)
    given = first if first.is_dir() else store.results_dirs([first])[0]
    command = reproduce_command(
        records, results=None if given == default_results else given, adapters=adapters)
    drawn: list[str] = []
    if plots and not (where == "file" or os.path.isfile(out)):
        log.info("figures: none (--output %s is not a regular file; they are written beside "
                 "one)", destination.describe(out))
    elif plots:
        log.info("figures: drawing (matplotlib)")
        written = figures(records, files, out.parent / "plots")
        drawn = [os.path.relpath(p, out.parent) for p in written]
        log.info("figures: %d in %s", len(drawn), out.parent / "plots")
    log.info("leaderboard: tables and significance marks of %d records", len(records))
    text = leaderboard_text(records, [str(f) for f in files], command, figures=drawn,
                            stale=stale)
    destination.write(out, text.encode("utf-8"))
    return destination.describe(out)


def first_line(path: Path, limit: int = 1 << 20) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.readline(limit)


def fault(exc: OSError | StoreFault) -> StoreFault:
    """A store or disk fault while writing a report: one line (nothing about trials)."""
    if isinstance(exc, StoreFault):
        return StoreFault(str(exc).split(";")[0])
    where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
    return StoreFault(f"cannot write{where}: {exc.strerror or exc}".splitlines()[0])
