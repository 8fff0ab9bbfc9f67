"""The column store: a dataset written once as memory-mapped ``.npy`` column files (users,
items, ratings, timestamps) beside a JSON manifest of their shapes, dtypes and checksums,
plus arrays keyed to the dataset (its splits), each with a small JSON entry of its own.

Every trial reads the columns zero-copy (``np.load(mmap_mode="r")``), so a host pays the
dataset's bytes once in its page cache instead of once per trial.  A store directory is
named by the dataset's fingerprint and its files never change once written: the writer
(the driver, before any trial) builds it in a temporary directory renamed into place;
readers (trials) only read it.  Each file is verified against its checksum once per process
(keyed on path, size, mtime and inode); a file that fails is ``StoreCorrupt``, never used.

A store may live at an fsspec URL (``s3://``, ``hdfs://``, ...): the driver uploads its
local copy, and a reader copies what it needs once into a local mirror (verified the same
way) and maps that.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import cache
from bench.data.model import Dataset, Ratings
from bench.errors import UserError

log = logging.getLogger(__name__)

#: Bump when the layout changes: a store of another version is not read.
STORE_VERSION = 1
MANIFEST = "manifest.json"
#: the rating columns, as ``Ratings`` names them
COLUMNS = ("users", "items", "ratings", "timestamps")
#: files are checksummed as sha256 over the sha256 of each block, blocks hashed in threads
BLOCK = 64 << 20
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))


class StoreCorrupt(UserError):
    """A store file is missing, truncated or fails its checksum: the run stops (exit 2)
    and nothing computed from it is recorded."""


# -- checksums ---------------------------------------------------------------------------


def digest_file(path: Path | str) -> str:
    """sha256 over the concatenated sha256 digests of the file's 64 MiB blocks."""
    size = os.path.getsize(path)

    def block(offset: int) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return hashlib.sha256(fh.read(BLOCK)).digest()

    offsets = range(0, max(size, 1), BLOCK)
    if len(offsets) == 1:
        digests = [block(0)]
    else:
        with cf.ThreadPoolExecutor(HASH_THREADS) as pool:
            digests = list(pool.map(block, offsets))
    return hashlib.sha256(b"".join(digests)).hexdigest()


#: (path, size, mtime_ns, inode) -> checksum verified by this process
_VERIFIED: dict[tuple, str] = {}
_VERIFIED_LOCK = threading.Lock()


def verify(path: Path, entry: dict) -> float:
    """Check ``path`` against its manifest ``entry`` (once per process while the file's
    size, mtime and inode stay the same); returns the seconds spent hashing (0 when it
    was verified before).  A mismatch raises ``StoreCorrupt``."""
    import time

    try:
        st = path.stat()
    except OSError:
        raise StoreCorrupt(f"data store file {path} is missing") from None
    if st.st_size != entry["bytes"]:
        raise StoreCorrupt(
            f"data store file {path} has {st.st_size} bytes, its manifest says "
            f"{entry['bytes']}: the store is damaged; delete {path.parent} to rebuild it")
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    with _VERIFIED_LOCK:
        if _VERIFIED.get(key) == entry["sha256"]:
            return 0.0
    t0 = time.perf_counter()
    got = digest_file(path)
    if got != entry["sha256"]:
        raise StoreCorrupt(
            f"data store file {path} fails its checksum ({got[:12]} vs {entry['sha256'][:12]} "
            f"in its manifest): the store is damaged; delete {path.parent} to rebuild it")
    with _VERIFIED_LOCK:
        _VERIFIED[key] = got
    return time.perf_counter() - t0


# -- locations: a local directory or an fsspec URL ----------------------------------------


def is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def local_path(location: str) -> Path:
    return Path(location[len("file://"):] if location.startswith("file://") else location)


def join(location: str, *parts: str) -> str:
    if is_local(location):
        return str(local_path(location).joinpath(*parts))
    return "/".join([location.rstrip("/"), *parts])


def mirror_root() -> Path:
    """Where a reader keeps its local copy of stores at non-local URLs."""
    from bench.data import fetch

    return fetch.cache_dir() / "store-mirror"


def _fs(location: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(location)


def fetch_file(location: str, name: str) -> Path:
    """The local path of file ``name`` of the store at ``location``; from a non-local URL,
    copied once into the local mirror (the caller verifies it)."""
    if is_local(location):
        return local_path(location) / name
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    local = mirror_root() / digest / name
    if not local.is_file():
        fs, root = _fs(location)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            fs.get_file(f"{root.rstrip('/')}/{name}", str(tmp))
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            raise StoreCorrupt(f"data store file {join(location, name)} is missing") from None
        os.replace(tmp, local)
        log.info("copied %s to %s", join(location, name), local)
    return local


def read_json(location: str, name: str) -> dict:
    path = fetch_file(location, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreCorrupt(f"data store entry {path} is unreadable ({type(exc).__name__}); "
                           f"delete {path.parent} to rebuild it") from None
    if data.get("version") != STORE_VERSION:
        raise StoreCorrupt(f"data store entry {path} is of store version "
                           f"{data.get('version')}, not {STORE_VERSION}")
    return data


# -- writing (the driver, before any trial) -----------------------------------------------


def _entry(path: Path, array: np.ndarray | None = None) -> dict:
    entry = {"bytes": path.stat().st_size, "sha256": digest_file(path)}
    if array is not None:
        entry.update(dtype=array.dtype.str, shape=list(array.shape))
    return entry


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def write_dataset(ds: Dataset, root: Path, fingerprint: str) -> Path:
    """The store of ``ds`` under ``root`` (``root/<fingerprint[:16]>``), written when absent
    (in a temporary directory renamed into place) and verified when present."""
    final = Path(root) / fingerprint[:16]
    if (final / MANIFEST).is_file():
        manifest = read_json(str(final), MANIFEST)
        if manifest.get("fingerprint") != fingerprint:
            raise StoreCorrupt(f"data store {final} holds another dataset "
                               f"({manifest.get('fingerprint', '?')[:16]}); delete it to rebuild")
        for name, entry in manifest["files"].items():
            verify(final / name, entry)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        r = ds.ratings
        files: dict[str, dict] = {}
        for column in COLUMNS:
            array = getattr(r, column)
            if array is None:
                continue
            path = tmp / f"{column}.npy"
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            files[path.name] = _entry(path, array)
        # ids, scale, side features, titles, meta: the dataset cache's format, without rows
        empty = Ratings(r.users[:0], r.items[:0], r.ratings[:0],
                        None if r.timestamps is None else r.timestamps[:0], r.n_users, r.n_items)
        rest = Dataset(ds.name, empty, ds.user_ids, ds.item_ids, ds.rating_scale,
                       ds.item_features, ds.user_features, ds.item_titles, dict(ds.meta),
                       ds.value_kind)
        cache.save_cache(rest, tmp / "extras.npz", {"store_version": STORE_VERSION})
        files["extras.npz"] = _entry(tmp / "extras.npz")
        _write_json(tmp / MANIFEST, {
            "version": STORE_VERSION, "name": ds.name, "fingerprint": fingerprint,
            "n_users": r.n_users, "n_items": r.n_items, "rows": len(r), "files": files,
        })
        tmp.chmod(0o777 & ~_umask())
        try:
            os.rename(tmp, final)
        except OSError:  # another driver wrote it first: use theirs
            if not (final / MANIFEST).is_file():
                raise
            log.info("data store %s written by another run meanwhile", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_array(store_dir: Path, name: str, array: np.ndarray) -> None:
    """``name.npy`` and its entry ``name.json`` in ``store_dir`` (kept when present)."""
    entry_path = Path(store_dir) / f"{name}.json"
    if entry_path.is_file():
        return
    tmp = Path(store_dir) / f".{name}.{os.getpid()}.{threading.get_ident()}.npy"
    try:
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)
        entry = {"version": STORE_VERSION, "file": f"{name}.npy", **_entry(tmp, array)}
        os.replace(tmp, Path(store_dir) / f"{name}.npy")
    finally:
        tmp.unlink(missing_ok=True)
    _write_json(entry_path, entry)


def upload(store_dir: Path, location: str) -> None:
    """Copy the local store ``store_dir`` to the non-local URL ``location`` (files absent
    there; the manifest last, so a reader never sees a manifest without its columns)."""
    fs, root = _fs(location)
    fs.makedirs(root, exist_ok=True)
    names = sorted(p.name for p in Path(store_dir).iterdir() if not p.name.startswith("."))
    names.sort(key=lambda n: n == MANIFEST)
    for name in names:
        target = f"{root.rstrip('/')}/{name}"
        if not fs.exists(target):
            fs.put_file(str(Path(store_dir) / name), target)


# -- reading (trials) ---------------------------------------------------------------------


def _map(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StoreCorrupt(f"data store file {path} is unreadable ({exc})") from None


def release(array: np.ndarray) -> None:
    """Drop a mapped array's pages from this process (they stay in the page cache), so a
    column read once for a split does not count in the process's memory afterwards."""
    mm = getattr(array, "_mmap", None)
    if isinstance(mm, mmap.mmap) and hasattr(mm, "madvise"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


@dataclass(frozen=True)
class StoredRatings(Ratings):
    """Ratings whose columns are mapped from a column store: ``fingerprint`` is the one the
    store was written (and verified) under, and ``take`` releases each column's pages."""

    stored_fingerprint: str = ""

    def fingerprint(self) -> str:
        return self.stored_fingerprint

    def take(self, index: np.ndarray) -> Ratings:
        out = []
        for column in (self.users, self.items, self.ratings, self.timestamps):
            if column is None:
                out.append(None)
                continue
            out.append(np.asarray(column[index]).view(np.ndarray))
            release(column)
        return Ratings(*out, self.n_users, self.n_items)


def open_dataset(location: str, name: str) -> tuple[Dataset, float]:
    """The dataset of the store at ``location``, its columns mapped read-only, and the
    seconds spent verifying checksums."""
    manifest = read_json(location, MANIFEST)
    files = manifest["files"]
    verified = 0.0
    columns: dict[str, np.ndarray | None] = {}
    for column in COLUMNS:
        entry = files.get(f"{column}.npy")
        if entry is None:
            columns[column] = None
            continue
        path = fetch_file(location, f"{column}.npy")
        verified += verify(path, entry)
        columns[column] = _map(path)
    extras = fetch_file(location, "extras.npz")
    verified += verify(extras, files["extras.npz"])
    try:
        rest = cache.read_cache(extras, name, {"store_version": STORE_VERSION})
    except cache.CacheInvalid as exc:
        raise StoreCorrupt(f"data store file {extras} is invalid ({exc})") from None
    ratings = StoredRatings(columns["users"], columns["items"], columns["ratings"],
                            columns["timestamps"], int(manifest["n_users"]),
                            int(manifest["n_items"]), stored_fingerprint=manifest["fingerprint"])
    meta = {**rest.meta, "data_store": location}
    ds = Dataset(name, ratings, rest.user_ids, rest.item_ids, rest.rating_scale,
                 rest.item_features, rest.user_features, rest.item_titles, meta, rest.value_kind)
    return ds, verified


def open_array(location: str, name: str) -> tuple[np.ndarray, float] | None:
    """Array ``name`` of the store, mapped read-only and verified (with the seconds spent
    verifying), or None when the store has no such array."""
    if is_local(location) and not (local_path(location) / f"{name}.json").is_file():
        return None
    try:
        entry = read_json(location, f"{name}.json")
    except StoreCorrupt:
        if not is_local(location):
            return None  # not uploaded: the caller computes it
        raise
    path = fetch_file(location, entry["file"])
    seconds = verify(path, entry)
    return _map(path), seconds


def manifest_digest(location: str) -> str | None:
    """sha256 of the store's manifest as read from ``location`` (None when unreadable):
    a Dask worker answering the driver's digest can read the store."""
    try:
        if is_local(location):
            data = (local_path(location) / MANIFEST).read_bytes()
        else:
            fs, root = _fs(location)
            with fs.open(f"{root.rstrip('/')}/{MANIFEST}", "rb") as fh:
                data = fh.read()
    except Exception:  # noqa: BLE001 - any failure means: this host cannot read it
        return None
    return hashlib.sha256(data).hexdigest()
