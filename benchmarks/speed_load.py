"""Speed tracking, load (docs/speed-tracking.md): reading ML-100k from recbench's checksummed
dataset cache, and parsing ML-100k's ``u.data`` layout (written from the dataset, so nothing
is downloaded) into a coded ``Dataset``.  Run by ``benchmarks/speed.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _speed import calibration, one_thread  # noqa: F401 (an autouse fixture)

from bench.data import datasets
from bench.data.cache import read_cache, save_cache
from bench.data.readers.coding import build_dataset
from bench.data.readers.movielens import parse_movielens_100k
from bench.data.readers.raw import SourceFiles


def test_calibration_start(benchmark):
    calibration(benchmark)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, dict, Path]:
    """A copy of ML-100k's dataset cache, and its ratings in ``u.data``'s layout."""
    ds = datasets.load("ml-100k")
    work = tmp_path_factory.mktemp("load")
    stamp = datasets.source_for("ml-100k").stamp
    save_cache(ds, work / "ml-100k.npz", stamp)
    r = ds.ratings
    lines = np.column_stack([ds.user_ids[r.users].astype(np.int64),
                             ds.item_ids[r.items].astype(np.int64),
                             r.ratings.astype(np.int64), r.timestamps])  # fmt: skip
    (work / "raw").mkdir()
    np.savetxt(work / "raw" / "u.data", lines, fmt="%d", delimiter="\t")
    return work / "ml-100k.npz", stamp, work / "raw"


def test_load_cached(benchmark, files):
    cache, stamp, _ = files
    ds = benchmark(read_cache, cache, "ml-100k", stamp)
    assert len(ds.ratings) == 100_000


def test_load_parse_ml100k(benchmark, files):
    _, _, raw_dir = files

    def parse():
        raw = parse_movielens_100k(SourceFiles(raw_dir, {"ratings": "u.data"}), {})
        return build_dataset(raw, "ml-100k", (1.0, 5.0), {})

    ds = benchmark(parse)
    assert len(ds.ratings) == 100_000


def test_calibration_end(benchmark):
    calibration(benchmark)
