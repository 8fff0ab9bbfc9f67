"""The binary dataset cache: a parsed or generated dataset kept as one checksummed ``.npz``
(``save_cache`` / ``read_cache``), valid while its stamp (cache version, source) matches."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.data import fetch
from bench.data.model import Dataset, Features, Ratings

log = logging.getLogger(__name__)

#: Bump when the parsed form changes: every cached ``.npz`` is then rebuilt.
CACHE_VERSION = 1

def _text_array(values: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(list(values)).encode(), dtype=np.uint8)


def _from_text_array(a: np.ndarray) -> list[Any]:
    return json.loads(a.tobytes().decode())


def _arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _features_arrays(prefix: str, f: Features | None) -> dict[str, np.ndarray]:
    if f is None:
        return {}
    m = f.matrix
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.asarray(m.shape, dtype=np.int64),
        f"{prefix}_names": _text_array(f.names),
    }


def _features_from(prefix: str, z: dict[str, np.ndarray]) -> Features | None:
    if f"{prefix}_data" not in z:
        return None
    m = sp.csr_matrix(
        (z[f"{prefix}_data"], z[f"{prefix}_indices"], z[f"{prefix}_indptr"]),
        shape=tuple(z[f"{prefix}_shape"]),
    )
    return Features(m, tuple(_from_text_array(z[f"{prefix}_names"])))


def _ids_array(key: str, ids: np.ndarray) -> dict[str, np.ndarray]:
    if ids.dtype.kind in "iu":
        return {key: ids.astype(np.int64)}
    return {f"{key}_text": _text_array(ids.tolist())}


def _ids_from(key: str, z: dict[str, np.ndarray]) -> np.ndarray:
    if key in z:
        return z[key]
    return np.asarray(_from_text_array(z[f"{key}_text"]), dtype=object)


def save_cache(ds: Dataset, path: Path, stamp: dict[str, Any]) -> None:
    """Write ``ds`` as an uncompressed ``.npz`` with a sha256 over all its arrays."""
    r = ds.ratings
    arrays: dict[str, np.ndarray] = {
        "users": r.users,
        "items": r.items,
        "ratings": r.ratings,
        "shape": np.asarray([r.n_users, r.n_items], dtype=np.int64),
        "scale": np.asarray(ds.rating_scale, dtype=np.float64),
        "meta": _text_array([{**ds.meta, **stamp}]),
        **_ids_array("user_ids", ds.user_ids),
        **_ids_array("item_ids", ds.item_ids),
        **_features_arrays("item_features", ds.item_features),
        **_features_arrays("user_features", ds.user_features),
    }
    if r.timestamps is not None:
        arrays["timestamps"] = r.timestamps
    if ds.item_titles is not None:
        arrays["item_titles"] = _text_array(ds.item_titles.tolist())
    if ds.value_kind != "rating":  # only then, so caches of rating data are unchanged
        arrays["value_kind"] = _text_array([ds.value_kind])
    arrays["checksum"] = np.frombuffer(_arrays_digest(arrays).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        fetch.make_readable(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class CacheInvalid(Exception):
    """The cache file is corrupt, truncated, stale or from another version."""


def read_cache(path: Path, name: str, stamp: dict[str, Any]) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files}
    except Exception as exc:  # truncated zip, bad CRC, bad header: all mean "rebuild"
        raise CacheInvalid(f"unreadable ({type(exc).__name__})") from None
    stored = z.pop("checksum", None)
    if stored is None or stored.tobytes().decode() != _arrays_digest(z):
        raise CacheInvalid("checksum mismatch")
    meta = _from_text_array(z["meta"])[0]
    if any(meta.get(k) != v for k, v in stamp.items()):
        raise CacheInvalid("built by another version or from another entry")
    n_users, n_items = (int(x) for x in z["shape"])
    ratings = Ratings(z["users"], z["items"], z["ratings"], z.get("timestamps"), n_users, n_items)
    titles = z.get("item_titles")
    meta["cache"] = str(path)
    meta["loaded_from_cache"] = True
    return Dataset(
        name=name,
        ratings=ratings,
        user_ids=_ids_from("user_ids", z),
        item_ids=_ids_from("item_ids", z),
        rating_scale=(float(z["scale"][0]), float(z["scale"][1])),
        item_features=_features_from("item_features", z),
        user_features=_features_from("user_features", z),
        item_titles=None if titles is None else np.asarray(_from_text_array(titles), dtype=object),
        meta=meta,
        value_kind=_from_text_array(z["value_kind"])[0] if "value_kind" in z else "rating",
    )




def cached(path: Path, name: str, stamp: dict[str, Any], build: Callable[[], Dataset]
           ) -> Dataset:
    """The dataset in the checksummed cache file ``path`` if valid for ``stamp``, else
    ``build()`` written there."""
    if path.is_file():
        try:
            return read_cache(path, name, stamp)
        except CacheInvalid as exc:
            log.warning("%s: cache %s %s; rebuilding", name, path, exc)
            path.unlink(missing_ok=True)
    ds = build()
    save_cache(ds, path, stamp)
    ds.meta.update(stamp, cache=str(path), loaded_from_cache=False)
    return ds
