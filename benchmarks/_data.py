"""ML-100k for the ALS benchmarks, from the data layer (offline: the PyPI fallback)."""

from __future__ import annotations

from bench.data import datasets
from bench.data.model import Dataset


def load_ml100k() -> Dataset:
    return datasets.load("ml-100k")
