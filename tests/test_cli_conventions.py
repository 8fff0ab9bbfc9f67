"""The command line behaves as users of command-line tools expect (issue 26): --version,
usage lines that name the program as started, a quiet end on a closed pipe, command
descriptions with examples, machine-readable listings and an adapter's parameters."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bench


def run(*args: str, script: bool = False, **kw) -> subprocess.CompletedProcess:
    argv = [recbench_script()] if script else [sys.executable, "-m", "bench"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=300, **kw)


def recbench_script() -> str:
    """The ``recbench`` console script of the environment running the tests."""
    found = shutil.which("recbench", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the recbench console script is not installed (pip install -e .)")
    return found


def test_version_on_the_module_and_the_console_script():
    from importlib.metadata import version

    expected = f"recbench {bench.__version__}"
    for script in (False, True):
        res = run("--version", script=script)
        assert res.returncode == 0 and res.stdout.strip() == expected, res
    assert version("recbench") == bench.__version__  # one version: pyproject reads bench's


def test_a_closed_pipe_ends_quietly_with_the_sigpipe_status():
    # `python -m bench list | head -3` where head has already gone: no reader at all
    proc = subprocess.Popen([sys.executable, "-m", "bench", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err


def test_a_pipe_closed_after_some_lines_ends_quietly_too():
    res = subprocess.run(f"{sys.executable} -m bench list | head -3; "
                         "echo status=${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                         capture_output=True, text=True, timeout=300)
    lines = res.stdout.splitlines()
    assert lines[0] == "datasets:" and len(lines) == 4
    assert lines[-1] in ("status=141", "status=0")  # 0: all was in the pipe before it closed
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr


def test_command_help_describes_the_command_with_examples_under_the_programs_name():
    res = run("compare", "--help")
    assert res.returncode == 0
    assert res.stdout.startswith("usage: python -m bench compare ")
    assert "Regression check between two result sets" in res.stdout
    assert "examples:\n  python -m bench compare results/baseline results/local" in res.stdout
    assert "--missing {fail,warn}" in res.stdout
    script = run("report", "--help", script=True)
    assert script.returncode == 0 and script.stdout.startswith("usage: recbench report ")
    assert "  recbench report --format csv --output - | head" in script.stdout
    for command in ("run", "tune", "write-layout", "list", "show"):
        text = run(command, "--help", script=True).stdout
        assert f"usage: recbench {command}" in text and "examples:\n  recbench " in text
    bad = run("run", "--bogus", script=True)
    assert bad.returncode == 2 and "(see `recbench run --help`)" in bad.stderr


def test_list_json_is_machine_readable():
    res = run("list", "--json")
    assert res.returncode == 0, res.stderr
    listing = json.loads(res.stdout)
    assert set(listing) == {"datasets", "adapters", "suites"}
    datasets = {d["name"]: d for d in listing["datasets"]}
    assert {"ml-100k", "netflix-prize"} <= set(datasets)
    assert datasets["ml-100k"]["available"] is True  # cached, or through the PyPI fallback
    assert set(datasets["netflix-prize"]["sources"]) == {"manual"}  # placed by hand
    adapters = {a["name"]: a for a in listing["adapters"]}
    assert adapters["baseline.Bias"] == {"name": "baseline.Bias",
                                         "module": "recbench_adapters.baselines",
                                         "available": True, "error": None}
    suites = {s["name"]: s for s in listing["suites"]}
    assert "smoke" in suites and suites["smoke"]["description"]


def test_show_prints_parameters_whose_defaults_and_the_search_space():
    res = run("show", "surprise.SVD")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    factors = next(line for line in lines if line.split()[:1] == ["n_factors"])
    assert factors.split()[1] == "100" and "library default" in factors
    assert "(common name: factors)" in factors
    seed = next(line for line in lines if line.split()[:1] == ["seed"])
    assert "harness default" in seed
    assert "search space (tuned runs):" in res.stdout and "n_factors: [" in res.stdout

    info = json.loads(run("show", "lightfm.WARP", "--json").stdout)
    params = {p["name"]: p for p in info["parameters"]}
    assert params["epochs"]["default"] == 30 and params["epochs"]["default_by"] == "recbench"
    assert params["no_components"]["default_by"] == "library"
    assert params["no_components"]["common_name"] == "factors"
    assert info["recbench_defaults"] == ["epochs"] and info["search_space"]

    preset = json.loads(run("show", "recbench.GenreALS", "--json").stdout)
    assert preset["preset_of"] == "recbench.ALS" and preset["defaults_by"] == "recbench"
    assert {p["name"]: p["default"] for p in preset["parameters"]}["genre_prior"] is True

    bad = run("show", "nope.Model")
    assert bad.returncode == 2 and "unknown adapter 'nope.Model'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
