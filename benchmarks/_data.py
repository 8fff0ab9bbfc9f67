"""ML-100k for the ALS benchmarks, from the data layer (offline: the PyPI fallback)."""

from __future__ import annotations

from bench import Dataset, load_dataset


def load_ml100k() -> Dataset:
    return load_dataset("ml-100k")
