"""The record module: defaults filled once, named keys, and readers that import only it
and the store (never each other)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from bench.execution import record, store

BENCH = Path(__file__).resolve().parent.parent / "bench"
FIGURES = BENCH / "reporting" / "figures"
#: Readers of stored records (a module, or a package whose modules make one reader and may
#: import each other); each figure module is a reader too.
UNITS = ("bench.reporting.leaderboard", "bench.reporting.significance",
         "bench.reporting.compare")


def unit_modules(unit: str) -> list[str]:
    """The modules of a reader: itself, or every module of its package."""
    base = BENCH.parent.joinpath(*unit.split("."))
    if not base.is_dir():
        return [unit]
    return [unit if p.stem == "__init__" else f"{unit}.{p.stem}" for p in base.glob("*.py")]


#: reader module -> the reader (unit) it belongs to
READERS = {
    **{m: unit for unit in UNITS for m in unit_modules(unit)},
    **{f"bench.reporting.figures.{p.stem}": f"bench.reporting.figures.{p.stem}"
       for p in FIGURES.glob("*.py") if p.stem not in ("__init__", "common", "layout")},
}
#: What readers may import of bench: the record module and the store for records, and
#: modules that know nothing of records (metric directions, errors, adapter classes,
#: report wording; the figures' shared drawing helpers).
ALLOWED = ("bench.execution.record", "bench.execution.store", "bench.evaluation.metrics",
           "bench.errors", "bench.execution.registry",
           "bench.reporting.text", "bench.reporting.figures.common",
           "bench.reporting.figures.layout")


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports, top level or inside functions (``from a import b``
    counts as ``a`` and ``a.b``)."""
    base = BENCH.parent.joinpath(*module.split("."))
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


def test_readers_import_only_the_record_module_and_the_store_not_each_other():
    assert "bench.reporting.figures.quality" in READERS  # the glob found the package
    assert "bench.reporting.significance.tables" in READERS  # and the reader packages
    for reader in sorted(READERS):
        used = {m for m in imports_of(reader) if m == "bench" or m.startswith("bench.")}
        # ``from bench.execution import store`` reads as bench.execution and
        # bench.execution.store: a package named only as the prefix of what it gives is not used
        used = {m for m in used if not any(o.startswith(m + ".") for o in used)}
        own = READERS[reader]  # a reader package's modules may import each other
        bad = {m for m in used
               if not any(m == a or m.startswith(a + ".") for a in (*ALLOWED, own))}
        assert not bad, f"{reader} imports {sorted(bad)}"


def test_no_import_loop_among_bench_modules():
    modules = {
        ".".join(p.relative_to(BENCH.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in BENCH.rglob("*.py")
    }

    def imported(m: str) -> set[str]:
        """``from bench import site`` imports the module bench.site, not the package bench
        (whose ``__init__`` runs first for any of its modules anyway)."""
        found = imports_of(m)
        return {i for i in found if i in modules and i != m
                and not any(o in modules and o.rpartition(".")[0] == i for o in found)}

    graph = {m: imported(m) for m in modules}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import loop: " + " -> ".join([*stack, m, n])
            if n not in state:
                visit(n, [*stack, m])
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [])


RAW = {
    "trial_id": "t1", "suite": "quick", "dataset": "synthetic",
    "split": {"seed": 0, "method": "random"}, "fold": 0, "adapter": "implicit.ALS",
    "params": {"factors": 8, "alpha": 1.0}, "status": "ok", "metrics": {"ndcg@10": 0.2},
    "fit_seconds": 0.5,
}


def test_record_fills_defaults_once():
    rec = record.Record.of(RAW)
    assert rec.group == "quick"  # no group: the suite
    assert rec.stage == "test" and rec.label == "defaults" and rec.cold_path == ""
    assert rec.metric_options == {} and rec.threads is None and rec.seed is None
    assert rec.get("fit_seconds") == 0.5 and rec.is_ok_test()
    assert record.Record.of({**RAW, "group": "ablation-als"}).group == "ablation-als"
    assert not record.is_ok_test({**RAW, "stage": "validation"})
    assert not record.is_ok_test({**RAW, "status": "failed"})


def test_keys_are_named_and_sort_as_tuples():
    table = record.table_key(RAW)
    assert table.group == "quick" and table.dataset == "synthetic"
    assert table.split == json.dumps(RAW["split"], sort_keys=True) and table.metric_options == "{}"
    row = record.row_key({**RAW, "threads": 2})
    assert (row.adapter, row.label, row.threads, row.cold_path) == ("implicit.ALS", "defaults", 2,
                                                                   "")
    assert row.param_dict == {"alpha": 1.0, "factors": 8} and row.library == "implicit"
    assert record.row_key({**RAW, "label": "tuned"}).param_dict == {}  # chosen per fold
    assert row == tuple(row) and record.Record.of(RAW).row_key == record.row_key(RAW)


def test_records_yields_one_view_per_stored_trial(tmp_path):
    for fold in (0, 1):
        store.append(store.run_file(tmp_path, "quick"), {**RAW, "trial_id": f"t{fold}",
                                                         "fold": fold})
    views = list(record.records(tmp_path))
    assert sorted(v.fold for v in views) == [0, 1]
    assert all(isinstance(v, record.Record) and v.group == "quick" for v in views)
    assert store.results_dirs(store.files([tmp_path])) == [tmp_path]
