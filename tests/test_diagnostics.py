"""Library code logs; only the command line decides what reaches the user's terminal."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
#: entry points whose output is deliberate: the CLI, the worker's protocol, ``python -m bench``
ENTRY_POINTS = {"bench/cli.py", "bench/execution/worker.py", "bench/__main__.py"}


def _is_stderr(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "stderr") or (
        isinstance(node, ast.Name) and node.id == "stderr"
    )


def stderr_writes(tree: ast.AST) -> list[int]:
    """Lines of ``print(..., file=sys.stderr)`` and ``sys.stderr.write(...)`` outside a
    function named ``main`` (a module's own command line, e.g. ``python -m bench.plots``)."""
    found: list[int] = []

    def visit(node: ast.AST, in_main: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main":
            in_main = True
        if isinstance(node, ast.Call) and not in_main:
            func = node.func
            if isinstance(func, ast.Name) and func.id == "print" and any(
                k.arg == "file" and _is_stderr(k.value) for k in node.keywords
            ):
                found.append(node.lineno)
            if isinstance(func, ast.Attribute) and func.attr == "write" and _is_stderr(func.value):
                found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, in_main)

    visit(tree, False)
    return found


def test_library_modules_do_not_write_to_stderr() -> None:
    offenders = []
    for package in ("bench", "adapters", "datasets"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ENTRY_POINTS:
                continue
            lines = stderr_writes(ast.parse(path.read_text(encoding="utf-8")))
            offenders += [f"{rel}:{n}" for n in lines]
    assert offenders == [], "use logging.getLogger(__name__) instead: " + ", ".join(offenders)


def test_the_scan_sees_what_it_forbids() -> None:
    code = (
        "import sys\nprint('x', file=sys.stderr)\nsys.stderr.write('y')\nprint('fine')\n"
        "def main():\n    print('cli', file=sys.stderr)\n"
    )
    assert stderr_writes(ast.parse(code)) == [2, 3]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "RECBENCH_ADAPTERS_PATH": str(ROOT / "tests" / "plugins")},
    )


@pytest.fixture
def duplicated_csv(tmp_path: Path) -> tuple[Path, Path]:
    """A one-user CSV with a duplicate row: a note while loading, then a usage error."""
    csv = tmp_path / "dup.csv"
    csv.write_text("user,item,rating\n1,1,4\n1,1,3\n1,2,5\n")
    suite = tmp_path / "s.toml"
    suite.write_text(
        f'description = "t"\n[[run]]\ndatasets = ["csv:{csv}"]\n'
        'splits = [{ method = "random" }]\nadapters = ["fault.Mean"]\n'
    )
    return csv, suite


def test_cli_shows_library_notes_and_quiet_hides_them(duplicated_csv, tmp_path: Path) -> None:
    csv, suite = duplicated_csv
    note = f"{csv}: dropped 1 duplicate (user, item) rows, kept the latest"
    error = f"error: dataset csv:{csv} has 1 user(s) and 2 item(s); a comparison needs at least 2"
    res = bench("run", "--suite", str(suite), "--results", str(tmp_path / "r"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[0] == note and lines[1].startswith(error) and len(lines) == 2, res.stderr
    for quiet in (["-q", "run"], ["run", "--quiet"]):
        res = bench(*quiet, "--suite", str(suite), "--results", str(tmp_path / "r"))
        assert res.returncode == 2
        assert res.stderr.strip().splitlines() == [lines[1]]
    assert not (tmp_path / "r").exists()
