"""The documentation stays true: README.md and docs/ are checked on every test run.

* the MkDocs site builds with warnings as errors (a broken link or anchor, a page missing
  from the nav), into a temporary directory;
* every Python example (README.md, docs/*.md) is a doctest, executed with its shown output
  checked (stdlib ``doctest``), from a scratch directory that sees the checkout's
  ``results/`` read-only, so an example that runs trials writes nowhere in the checkout;
* every shell command shown in README.md is run when it takes seconds (``list``, ``show``,
  ``--version``), and otherwise parsed by the CLI's own parser with its suite, adapter
  patterns and input paths checked; the test command is exactly the one ``.ci/run`` runs;
* relative links of README.md and repository paths named in the docs exist.
"""

from __future__ import annotations

import doctest
import fnmatch
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench import cli
from bench.execution import registry, suites

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
FENCE = re.compile(r"^[ \t]*```([\w-]*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)


def blocks(path: Path, *languages: str) -> list[str]:
    """The fenced code blocks of a markdown file in one of ``languages``."""
    return [body for lang, body in FENCE.findall(path.read_text()) if lang in languages]


def commands(text: str) -> list[list[str]]:
    """Shell command lines of a code block: continuations joined, comments dropped, and
    ``a && b`` split into two commands."""
    out: list[list[str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        argv: list[str] = []
        for token in [*shlex.split(line, comments=True), "&&"]:
            if token != "&&":
                argv.append(token)
            elif argv:
                out.append(argv)
                argv = []
    return out


# -- the site -----------------------------------------------------------------------------

def test_the_docs_build_with_warnings_as_errors(tmp_path: Path):
    pytest.importorskip("mkdocs", reason="the test extra installs mkdocs")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert re.search(rf":\s*{re.escape(page.name)}\s*$", nav, re.M), (
            f"docs/{page.name} is not in mkdocs.yml's nav")


# -- Python examples ----------------------------------------------------------------------

def scratch_checkout(tmp_path: Path) -> Path:
    """A directory that looks like the checkout to relative paths (``results/published``,
    ``results/LEADERBOARD.md``...) but where anything written stays in ``tmp_path``."""
    work = tmp_path / "checkout"
    (work / "results").mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name not in ("results", ".git", ".venv"):
            (work / entry.name).symlink_to(entry)
    for entry in (ROOT / "results").iterdir():
        if entry.name not in ("local", "runs", "splits"):
            (work / "results" / entry.name).symlink_to(entry)
    return work


#: the documents with doctest examples (a new page with examples is picked up by itself)
EXAMPLES = [p for p in DOCUMENTS if doctest.DocTestParser().get_examples(p.read_text())]


def test_the_readme_and_the_results_page_have_examples():
    assert {README, ROOT / "docs" / "results.md"} <= set(EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_examples_print_what_they_show(path: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(scratch_checkout(tmp_path))
    monkeypatch.delenv("RECBENCH_ADAPTERS_PATH", raising=False)
    result = doctest.testfile(
        str(path), module_relative=False, globs={}, report=True, verbose=False,
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
    )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} example(s) of {path.name} print other output"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_block_is_an_executed_example(path: Path):
    """A ```python block without ``>>>`` would never run: examples are written as doctests."""
    for body in blocks(path, "python", "py", "pycon"):
        assert ">>>" in body, f"{path.name}: a Python block that is not a doctest:\n{body}"


# -- README's shell commands --------------------------------------------------------------

def ci_command() -> str:
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.startswith("python -m pip install")]
    assert len(lines) == 1
    return lines[0]


def test_the_readme_test_command_is_what_ci_runs():
    shown = [line.strip() for body in blocks(README, "bash", "sh", "console")
             for line in body.splitlines() if "python -m pytest" in line]
    assert shown == [ci_command()]


def readme_bench_commands() -> list[list[str]]:
    found = []
    for body in blocks(README, "bash", "sh"):
        for argv in commands(body):
            if argv[:3] == ["python", "-m", "bench"]:
                found.append(argv[3:])
            else:  # installs and the test command; nothing else is shown
                assert argv[:4] in (["python", "-m", "pip", "install"],
                                    ["python", "-m", "pytest"]), argv
    return found


FAST = ("list", "show", "--version")


def takes_seconds(argv: list[str]) -> bool:
    """`list`, `show`, `--version`, and `report --format csv|latex` (tables, no figures)."""
    return argv[0] in FAST or (argv[0] == "report" and "--format" in argv
                               and "--html" not in argv)


def test_readme_commands_that_take_seconds_run(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch):
    work = scratch_checkout(tmp_path)
    monkeypatch.chdir(work)  # what a command writes lands in the scratch directory
    ran, shown = 0, []
    for argv in [*readme_bench_commands(), ["--version"], ["list"], ["show", "recbench.ALS"]]:
        if not takes_seconds(argv):
            continue
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # --version is argparse's
            code = exc.code
        out = capsys.readouterr().out
        assert code == 0, (argv, out)
        if "--output" in argv and argv[argv.index("--output") + 1] != "-":
            out = (work / argv[argv.index("--output") + 1]).read_text()
        assert out.strip(), argv
        shown.append(out)
        ran += 1
    assert ran >= 4
    assert f"recbench {bench.__version__}\n" in shown


def test_readme_long_commands_parse_and_name_what_exists():
    """`run --suite all` takes an hour: check that its arguments parse, that its suite and
    adapter patterns exist, and that each input directory it reads is there."""
    made: set[str] = set()
    names = list(registry.discover())  # every adapter, and `lib.*` for a missing extra
    checked = 0
    for argv in readme_bench_commands():
        args = cli.build_parser("python -m bench").parse_args(argv)
        if args.command in ("run", "tune"):
            assert args.suite in suites.suite_files(), args.suite
            suites.load(args.suite)
            for pattern in args.adapter or []:
                assert fnmatch.filter(names, pattern), (pattern, argv)
            made.add(os.path.normpath(args.results))
        elif args.command == "report":
            given = args.results if isinstance(args.results, list) else [args.results]
            assert all((ROOT / path).is_dir() for path in given), argv
        elif args.command == "compare":
            for path in (args.baseline, args.current):
                assert (ROOT / path).is_dir() or os.path.normpath(path) in made, argv
        checked += 1
    assert checked >= 5


# -- links and paths ----------------------------------------------------------------------

def slug(heading: str) -> str:
    """A heading's anchor, as Python-Markdown's toc (MkDocs) and GitHub make it for
    the plain headings these pages use."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in re.findall(r"^#+\s+(.*?)\s*$", text, re.M)}


def test_readme_links_point_at_files_and_headings_that_exist():
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", README.read_text()):
        if "://" in target:
            continue
        path = ROOT / target if target else README
        assert path.exists(), f"README links to missing {target}"
        if anchor:
            assert anchor in anchors(path), f"README links to {target}#{anchor}: no such heading"


def test_repository_paths_named_in_the_docs_exist():
    """`bench/...`, `tests/...`, `benchmarks/...` in backticks name files of this checkout
    (placeholders such as `<suite>` or globs are left alone)."""
    pattern = re.compile(r"`((?:bench|adapters|datasets|benchmarks|tests|results|\.ci)"
                         r"/[\w./-]*)`")
    for path in DOCUMENTS:
        for name in pattern.findall(path.read_text()):
            if name.startswith(("results/local", "results/runs")) or "*" in name or (
                    "..." in name):
                continue
            assert (ROOT / name).exists(), f"{path.name} names {name}, which does not exist"


def test_the_citation_names_this_version():
    (entry,) = blocks(README, "bibtex")
    assert f"version = {{{bench.__version__}}}" in entry


def test_the_adapter_table_lists_every_registered_adapter():
    text = (ROOT / "docs" / "adapters.md").read_text()
    table = text[text.index("| library | adapters |"):]
    table = table[:table.index("\n\n")]
    listed = set(re.findall(r"`([a-z]+\.[\w-]+)`", table))
    registered = set(registry.available())
    assert registered <= listed, f"not in docs/adapters.md: {sorted(registered - listed)}"
    known = {name.split(".")[0] for name in registry.discover()}
    assert {name.split(".")[0] for name in listed} <= known
    assert listed - registered <= {n for n in listed if registry.unavailable_reason(n)}, (
        f"listed but not registered: {sorted(listed - registered)}")
