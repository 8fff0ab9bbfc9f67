"""Trials read their dataset and split from the column store (``bench.data.colstore``).

The driver writes, before any trial, each dataset of the run and the split assignments its
trials use into the store (``publish``); a trial is then handed the store's location and
maps the columns read-only (``use_store``, ``load``, ``fold``) instead of loading the dataset
cache and rebuilding the split.  The store is not the results store: it is data, keyed by
the dataset's fingerprint, written only by a driver and only read by trials, so the rule
"a trial is a spec in, one record out" holds.

Where it lives: ``$RECBENCH_DATA_STORE`` (a directory every worker can reach, or an fsspec
URL), else ``<dataset cache>/store``; ``RECBENCH_DATA_STORE=off`` turns it off (each worker
loads the dataset and rebuilds the split, as before).
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.data import colstore, fetch
from bench.data.model import Dataset, Ratings
from bench.splitting.splits import Fold, SplitSpec, fold_rows, split_key

log = logging.getLogger(__name__)

ENV = "RECBENCH_DATA_STORE"
OFF = ("off", "none", "0", "false")


def root() -> str | None:
    """The store's root location, or None when the store is turned off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    return value or str(fetch.cache_dir() / "store")


def split_name(split_key_: str) -> str:
    return f"split-{split_key_}"


#: a split's folds get their own row files (``fold_rows_files``) only when it has at most
#: this many folds: each stored fold costs one more copy of the dataset's rows on disk
MAX_STORED_FOLDS = 5
#: ``RECBENCH_STORE_FOLD_ROWS=off`` keeps only the split assignment (trials gather the rows)
FOLD_ROWS_ENV = "RECBENCH_STORE_FOLD_ROWS"


def fold_files_on() -> bool:
    return os.environ.get(FOLD_ROWS_ENV, "").strip().lower() not in OFF


def fold_name(split_key_: str, fold_: int, part: str, column: str) -> str:
    """The store array of one column of a fold's ``train`` or ``test`` rows."""
    return f"{split_name(split_key_)}-fold{fold_}-{part}-{column}"


def publish(dataset: Dataset, fingerprint: str,
            assignments: dict[SplitSpec, np.ndarray],
            fold_files: dict[SplitSpec, set[int]] | None = None) -> tuple[str, str] | None:
    """Write ``dataset`` and its split ``assignments`` to the store (the driver, before the
    trials): ``(local directory, location workers read)``, the two equal unless the root is
    a non-local URL (then the local directory is the upload's source).  None when off.

    ``fold_files``: the folds (of splits with at most ``MAX_STORED_FOLDS`` folds) whose
    train and test rows are also written as column files of their own, which trials map
    instead of gathering the rows out of the dataset's columns."""
    where = root()
    if where is None:
        return None
    local_root = fetch.cache_dir() / "store" if not colstore.is_local(where) else \
        colstore.local_path(where)
    t0 = time.perf_counter()
    store_dir = colstore.write_dataset(dataset, local_root, fingerprint)
    for spec, fold_of_row in assignments.items():
        colstore.write_array(store_dir, split_name(split_key(fingerprint, spec)), fold_of_row)
    if fold_files and fold_files_on():
        for spec, folds in fold_files.items():
            if spec in assignments and len(spec.folds) <= MAX_STORED_FOLDS:
                for f in sorted(folds):
                    write_fold(store_dir, dataset, split_key(fingerprint, spec),
                               assignments[spec], f)
    location = str(store_dir)
    if not colstore.is_local(where):
        location = colstore.join(where, store_dir.name)
        colstore.upload(store_dir, location)
    log.info("data store for %s: %s (%.1f s)", dataset.name, location, time.perf_counter() - t0)
    return str(store_dir), location


def write_fold(store_dir: Path, dataset: Dataset, key: str, fold_of_row: np.ndarray,
               fold_: int) -> None:
    """The fold's train and test rows as column files, in the order ``Ratings.take`` of
    ``fold_rows`` gives them (so every array is bit-identical to the gathered one)."""
    r = dataset.ratings
    columns = [c for c in colstore.COLUMNS if getattr(r, c) is not None]
    if all((store_dir / f"{fold_name(key, fold_, part, c)}.json").is_file()
           for part in ("train", "test") for c in columns):
        return
    t0 = time.perf_counter()
    rows = fold_rows(fold_of_row, fold_)
    written = 0
    for part, index in (("train", rows.train_rows), ("test", rows.test_rows)):
        for column in columns:
            array = getattr(r, column)
            taken = np.asarray(array[index]).view(np.ndarray)
            written += taken.nbytes
            colstore.write_array(store_dir, fold_name(key, fold_, part, column), taken)
            del taken
    log.info("data store: fold %d of split %s written as its own rows, %.1f MB more on disk "
             "(%.1f s)", fold_, key, written / 1e6, time.perf_counter() - t0)


# -- the trial's side ---------------------------------------------------------------------

#: dataset name -> store location, for the trials of this process
_locations: dict[str, str] = {}
#: dataset name -> how the executor delivered it (``bytes_scattered``) for the record
_delivery: dict[str, dict] = {}


def use_store(name: str, location: str) -> None:
    """Trials of ``name`` in this process read it from the store at ``location``."""
    _locations[name] = location


def note_delivery(name: str, **info: object) -> None:
    """What the executor says about how ``name`` came (e.g. ``bytes_scattered``)."""
    _delivery[name] = dict(info)


def location(name: str) -> str | None:
    return _locations.get(name)


#: seconds this process spent verifying store files for the current trial
_verify_seconds: list[float] = [0.0]


@lru_cache(maxsize=2)
def _open(location_: str, name: str) -> Dataset:
    ds, seconds = colstore.open_dataset(location_, name)
    _verify_seconds[0] += seconds
    return ds


def load(name: str) -> Dataset:
    """The dataset from its store (mapped; verified once per process)."""
    return _open(_locations[name], name)


@lru_cache(maxsize=4)
def _fold(location_: str, key: str, fold: int) -> Fold | None:
    found = colstore.open_array(location_, split_name(key))
    if found is None:
        return None
    fold_of_row, seconds = found
    _verify_seconds[0] += seconds
    out = fold_rows(fold_of_row, fold)
    colstore.release(fold_of_row)
    return out


def fold(name: str, dataset: Dataset, spec: SplitSpec, fold_: int) -> Fold | None:
    """The fold's rows from the stored split (kept per process), or None when the store
    does not hold this split (the caller assigns it)."""
    return _fold(_locations[name], split_key(dataset.fingerprint(), spec), fold_)


@lru_cache(maxsize=2)
def _fold_ratings(location_: str, key: str, fold_: int, n_users: int, n_items: int,
                  timestamps: bool) -> tuple[Ratings, Ratings] | None:
    parts = []
    for part in ("train", "test"):
        columns: dict[str, np.ndarray | None] = {"timestamps": None}
        for column in colstore.COLUMNS:
            if column == "timestamps" and not timestamps:
                continue
            found = colstore.open_array(location_, fold_name(key, fold_, part, column))
            if found is None:
                return None
            array, seconds = found
            _verify_seconds[0] += seconds
            columns[column] = array.view(np.ndarray)  # read-only, still mapped
        parts.append(Ratings(columns["users"], columns["items"], columns["ratings"],
                             columns["timestamps"], n_users, n_items))
    return parts[0], parts[1]


def fold_ratings(name: str, dataset: Dataset, spec: SplitSpec, fold_: int
                 ) -> tuple[Ratings, Ratings] | None:
    """The fold's train and test ratings mapped read-only from their own store files, or
    None when the store does not hold them (the caller gathers them).  The arrays are the
    store's pages: nothing may write into them."""
    loc = _locations.get(name)
    if loc is None or not fold_files_on():
        return None
    r = dataset.ratings
    return _fold_ratings(loc, split_key(dataset.fingerprint(), spec), fold_, r.n_users,
                         r.n_items, r.timestamps is not None)


def delivery(name: str, load_seconds: float, split_seconds: float, take_seconds: float
             ) -> dict:
    """The record's ``data_delivery``: how the trial's data arrived and what it cost."""
    loc = _locations.get(name)
    info: dict = {"via": "store" if loc else "loaded", "bytes_scattered": 0}
    if loc:
        info["store"] = loc
    info.update(_delivery.get(name, {}))
    if not loc and info.get("bytes_scattered"):
        info["via"] = "scattered"
    info.update(load_seconds=round(load_seconds, 6), split_seconds=round(split_seconds, 6),
                take_seconds=round(take_seconds, 6),
                verify_seconds=round(_verify_seconds[0], 6))
    _verify_seconds[0] = 0.0
    return info
