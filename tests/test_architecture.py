"""The package's shape: bench/ reads as the pipeline (a few modules, one sub-package per
stage, each saying what it owns), no module over 600 lines, a public API that names itself
and loads lazily, no import loops, and benchmark scripts that use the public API or one stage.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MAX_TOP_MODULES = 12
MAX_LINES = 600
#: ``bench.kernels`` belongs to the stage of recbench's own models (like implicit's ``cpu/``)
SAME_STAGE = {"kernels": "models"}


def import_graph():
    """benchmarks/import_graph.py, the script the closing note runs, loaded by path."""
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "benchmarks" /
                                                  "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sources() -> list[Path]:
    return sorted([*BENCH.rglob("*.py"), *(ROOT / "adapters").rglob("*.py")])


def test_at_most_twelve_modules_directly_under_bench():
    top = sorted(p.name for p in BENCH.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_no_module_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("init", sorted(
    str(p.relative_to(ROOT)) for p in sources() if p.name == "__init__.py"))
def test_every_package_says_what_it_owns(init):
    doc = ast.get_docstring(ast.parse((ROOT / init).read_text(encoding="utf-8")))
    assert doc, f"{init} has no docstring"
    assert len(doc.split("\n\n")[0].splitlines()) <= 2, f"{init}: summary over two lines"


def test_public_names_resolve():
    assert "run" in bench.__all__ and "results" in bench.__all__
    for name in bench.__all__:
        assert getattr(bench, name) is not None, name
    assert callable(bench.results.load) and bench.load_dataset.__name__ == "load"
    with pytest.raises(AttributeError):
        bench.no_such_name  # noqa: B018


def test_import_bench_stays_cheap():
    code = ("import sys, bench\n"
            "heavy = sorted(m for m in ('numpy', 'scipy', 'pandas', 'numba', 'matplotlib')\n"
            "               if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_no_import_loops_and_one_thread_setter():
    graph_script = import_graph()
    graph = graph_script.module_graph(ROOT)
    assert "bench.data.readers.table" in graph and "bench.execution.trial" in graph
    assert graph_script.loops(graph) == []
    assert graph_script.thread_setters(ROOT) == ["bench/execution/threads.py"]


def code_strings(tree: ast.AST) -> list[ast.AST]:
    """String constants that are Python code importing bench (run as ``python -c``)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                "from bench" in node.value or "import bench" in node.value):
            try:
                out.append(ast.parse(node.value))
            except SyntaxError:  # prose that mentions an import
                pass
    return out


def bench_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``bench`` import in ``path``: top level, in functions and in
    code strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for t in [tree, *code_strings(tree)]:
        for node in ast.walk(t):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench":
                found += [(node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(a.name, "") for a in node.names if a.name.split(".")[0] == "bench"]
    return found


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_benchmark_scripts_use_the_public_api_or_one_stage(script):
    stages = set()
    for module, name in bench_imports(ROOT / "benchmarks" / script):
        if module == "bench":  # ``import bench`` (name "") or ``from bench import <public>``
            assert name in ("", *bench.__all__), f"{script}: bench.{name} is not public"
        else:
            stage = module.split(".")[1]
            stages.add(SAME_STAGE.get(stage, stage))
    assert len(stages) <= 1, f"{script} reaches into stages {sorted(stages)}"


def test_pyproject_lists_every_package():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    installed_as = {v: k for k, v in config["setuptools"]["package-dir"].items()}
    found = {
        ".".join([installed_as[init.relative_to(ROOT).parts[0]],
                  *init.parent.relative_to(ROOT).parts[1:]])
        for top in installed_as for init in (ROOT / top).rglob("__init__.py")
    }
    assert sorted(config["setuptools"]["packages"]) == sorted(found)


LAZY_ADAPTERS = r"""
import sys
from bench.execution import registry, suites
heavy = ("torch", "sklearn", "pyspark", "lightfm", "surprise")
assert registry.get("baseline.Popularity").name == "baseline.Popularity"
assert suites.match_adapters(["baseline.*"], ["baseline.Random"])
assert registry.known("implicit.ALS") and not registry.known("baseline.Nope")
print(sorted(m for m in heavy if m in sys.modules))
names = registry.available("*ALS")  # a wildcard library: every module
assert {"recbench.ALS", "implicit.ALS"} <= set(names), names
print(len(registry.discover()))
"""


def test_a_run_imports_only_the_libraries_it_names():
    """A run of baselines does not pay for importing PyTorch, scikit-learn or Spark (seconds
    per CLI call): the registry imports a library's module when a name of it is asked for,
    and every module's adapters carry its library's name (``recbench_adapters.LIBRARIES``
    for a module not named like its library), which is what makes that lookup right."""
    done = subprocess.run([sys.executable, "-c", LAZY_ADAPTERS], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    imported, count = done.stdout.split("\n")[:2]
    assert imported == "[]", imported
    import recbench_adapters

    from bench.execution import registry

    infos = registry.discover()
    assert len(infos) == int(count)
    for name, info in infos.items():
        module = info.module.rsplit(".", 1)[-1]
        library = recbench_adapters.LIBRARIES.get(module, module)
        assert info.module.startswith("recbench_plugin_") or name.split(".")[0] == library, (
            name, info.module)
