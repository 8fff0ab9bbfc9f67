"""Architecture check, not a speed benchmark: the import graph of ``bench/`` (what each
record reader imports), its import loops, which stage imports which, and which modules set
thread counts.

    python benchmarks/import_graph.py [REPO]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

READERS = ("bench.reporting.leaderboard.page", "bench.reporting.leaderboard.table",
           "bench.reporting.figures", "bench.reporting.significance.pairing",
           "bench.reporting.significance.tables", "bench.reporting.compare",
           "bench.reporting.protocol", "bench.results", "bench.site.builder")
THREAD_SETTERS = {"set_num_threads", "threadpool_limits", "ThreadpoolController"}


def module_graph(root: Path) -> dict[str, list[str]]:
    """Module -> the ``bench`` modules it imports (top-level and function-level imports)."""
    paths = {}
    for path in sorted((root / "bench").rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        paths[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in paths else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("bench")}
        graph[name] = sorted(d for d in deps if d != name and d in paths)
    return graph


def loops(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def stage_of(module: str) -> str:
    """``bench.data.readers.table`` -> ``data``; a module directly under ``bench/`` is its
    own (``cli``, ``adapter``, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def stage_graph(graph: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """Stage -> the other stages it imports -> the module imports that make the edge."""
    out: dict[str, dict[str, list[str]]] = {}
    for module, deps in graph.items():
        for dep in deps:
            a, b = stage_of(module), stage_of(dep)
            if a != b:
                out.setdefault(a, {}).setdefault(b, []).append(f"{module} -> {dep}")
    return {a: dict(sorted(edges.items())) for a, edges in sorted(out.items())}


def thread_setters(root: Path) -> list[str]:
    who = set()
    for path in [*(root / "bench").rglob("*.py"), *(root / "adapters").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else (
                node.id if isinstance(node, ast.Name) else None)
            if name in THREAD_SETTERS:
                who.add(str(path.relative_to(root)))
    return sorted(who)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    graph = module_graph(root)
    for reader in READERS:
        print(f"{reader} -> {', '.join(graph.get(reader, []))}")
    print("import loops:", loops(graph) or "none")
    print("stages (sub-packages and modules directly under bench/) and what they import:")
    for stage, edges in stage_graph(graph).items():
        print(f"  {stage} -> {', '.join(edges)}")
    print("modules that set thread counts:", thread_setters(root))


if __name__ == "__main__":
    main()
