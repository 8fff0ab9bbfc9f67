"""Generic tables: CSV / TSV / parquet, plain or compressed, with detected or given column
names (``csv:PATH?...`` datasets and registry entries of format ``table``)."""

from __future__ import annotations

import io
import lzma
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from bench.data import input_checks
from bench.data.readers.ids import parse_ids
from bench.data.readers.raw import RawRatings, SourceFiles
from bench.errors import UserError

COLUMN_SPELLINGS: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "user_id", "uid", "customer_id"),
    "item": ("item", "movieid", "item_id", "itemid", "iid", "movie_id"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime"),
    # implicit-only data: how often the user interacted with the item
    "count": ("count", "counts", "plays", "playcount", "play_count", "clicks", "views",
              "purchases", "quantity", "frequency"),
}  # fmt: skip
TABLE_OPTIONS = ("user", "item", "rating", "timestamp", "count", "scale", "sep", "header")
_SEPARATORS = ("\t", ",", ";", "|")
#: compression suffix -> pandas ``compression`` name; the file type is the suffix before it
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_NO_VALUE = ("none",)


def parse_scale(text: str, where: str) -> tuple[float, float]:
    """``"1-5"`` or ``"0.5-5"`` -> (low, high)."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:-|\.\.|:)\s*(-?\d+(?:\.\d+)?)\s*", text)
    if not m or float(m.group(1)) >= float(m.group(2)):
        raise UserError(f"{where}: scale {text!r} must look like 1-5 or 0.5-5 (low-high)")
    return float(m.group(1)), float(m.group(2))


def table_type(path: Path) -> tuple[str, str | None]:
    """(file type suffix, compression or None): ``x.tsv.gz`` -> ``(".tsv", "gzip")``."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        return (suffixes[-2] if len(suffixes) > 1 else ""), compression
    return (suffixes[-1] if suffixes else ""), None


@contextmanager
def open_decompressed(path: Path) -> Iterator[IO[bytes]]:
    """``path`` opened for reading its decompressed bytes (plain files as they are)."""
    _, compression = table_type(path)
    if compression == "gzip":
        import gzip

        f: IO[bytes] = gzip.open(path, "rb")
    elif compression == "bz2":
        import bz2

        f = bz2.open(path, "rb")
    elif compression == "xz":
        import lzma

        f = lzma.open(path, "rb")
    elif compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise UserError(f"{path}: reading .zst files needs `pip install zstandard`") from None
        f = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)  # noqa: SIM115
    else:
        f = open(path, "rb")  # noqa: SIM115
    with f:
        yield f


def _read_head(path: Path, n: int = 65536) -> bytes:
    """The first ``n`` decompressed bytes (fewer at the end of the file)."""
    try:
        with open_decompressed(path) as f:
            out = b""
            while len(out) < n:
                chunk = f.read(n - len(out))
                if not chunk:
                    break
                out += chunk
            return out
    except UserError:
        raise
    except Exception as exc:  # BadGzipFile, lzma.LZMAError, zstd.ZstdError, EOFError, ...
        raise UserError(f"{path}: cannot decompress: {exc}".splitlines()[0]) from None


def _sniff_separator(path: Path) -> str:
    raw = _read_head(path)
    if not raw:
        raise UserError(f"{path}: file is empty")
    head = raw.decode("utf-8", errors="replace")
    first = head.splitlines()[0] if head.strip() else ""
    counts = {s: first.count(s) for s in _SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    if counts[best] == 0:
        if re.search(r"\S\s+\S", first):
            return r"\s+"
        raise UserError(f"{path}: cannot detect the column separator (tried tab , ; |)")
    return best


def _pick_column(columns: list[str], role: str, given: str | None, path: Path) -> str | None:
    if given is not None:
        if given in columns:
            return given
        raise UserError(
            f"{path}: no column {given!r} for {role}; columns are: {', '.join(columns)}"
        )
    lowered = {str(c).strip().lower(): c for c in columns}
    for spelling in COLUMN_SPELLINGS[role]:
        if spelling in lowered:
            return lowered[spelling]
    return None


def _timestamps(values: pd.Series, where: Callable[[int], str]) -> np.ndarray:
    """Seconds as int64 from numbers (floored) or date / datetime strings."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        return np.floor(num.to_numpy(np.float64)).astype(np.int64)
    if num.notna().any():  # a numeric column with a bad cell
        i = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise UserError(f"{where(i)}: timestamp {values.iloc[i]!r} is not a number or date")
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise UserError(f"{where(i)}: timestamp {values.iloc[i]!r} is not a number or date")
    naive_utc = parsed.dt.tz_localize(None)
    return naive_utc.to_numpy().astype("datetime64[s]").astype(np.int64)


def _id_dtypes(
    path: Path, sep: str, no_header: bool, engine: str, options: dict[str, str]
) -> dict[Any, type]:
    """``dtype`` for ``read_csv``: the user and item columns read as text, never as numbers
    (``object``: the C parser keeps each field's text; ``str`` is the same, only slower)."""
    try:
        head = pd.read_csv(
            path, sep=sep, header=None if no_header else 0, nrows=1, engine=engine, dtype=str
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError,
            EOFError, lzma.LZMAError):
        return {}  # the full read reports it
    labels = list(head.columns)
    names = [str(c) for c in labels]
    out: dict[Any, type] = {}
    for role in ("user", "item"):
        given = options.get(role)
        name = given if given in names else _pick_column(names, role, None, path)
        if name is not None:
            out[labels[names.index(name)]] = object
    return out


def read_table(path: Path, options: dict[str, str]) -> RawRatings:
    """A ratings table from CSV / TSV / parquet, columns detected or named in ``options``.

    Compressed files (``.gz``, ``.bz2``, ``.xz``, ``.zst``) are read decompressed; the
    file type is the suffix before the compression suffix.  Without a rating column the
    table is implicit-only data (``RawRatings.value_kind``): a count column (``?count=``,
    or a detected one such as ``plays``) gives the counts, otherwise every row is one
    interaction of value 1 (also with ``?rating=none``).
    """
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a CSV, TSV or parquet file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")
    unknown = sorted(set(options) - set(TABLE_OPTIONS))
    if unknown:
        raise UserError(
            f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(TABLE_OPTIONS)}"
        )
    no_header = options.get("header", "").lower() in ("none", "no", "false", "0")
    no_rating = options.get("rating", "x").strip().lower() in _NO_VALUE
    if no_rating and "count" in options:
        raise UserError(f"{path}: give either ?rating=none or ?count=COLUMN, not both")
    if "rating" in options and "count" in options:
        raise UserError(f"{path}: give either ?rating=COLUMN or ?count=COLUMN, not both")
    kind, compression = table_type(path)
    if compression == "zstd":
        input_checks.check_zstd_whole(path)
    if kind in (".parquet", ".pq"):
        try:
            if compression:
                with open_decompressed(path) as f:
                    df = pd.read_parquet(io.BytesIO(f.read()))
            else:
                df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a broken file
            raise UserError(f"{path}: cannot read parquet: {exc}".splitlines()[0]) from None
        first_line = 0
    else:
        sep = options.get("sep") or _sniff_separator(path)
        sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": r"\s+"}.get(
            sep, sep
        )
        engine = "python" if len(sep) > 1 and sep != r"\s+" else "c"
        input_checks.check_first_line(path, _read_head(path, input_checks.MAX_FIRST_LINE), sep)
        try:
            df = pd.read_csv(
                path,
                sep=sep,
                header=None if no_header else 0,
                skip_blank_lines=False,  # blank lines stay as empty rows: true line numbers
                engine=engine,
                dtype=_id_dtypes(path, sep, no_header, engine, options),  # ids as text
                compression="infer",
            )
        except pd.errors.EmptyDataError:
            raise UserError(f"{path}: file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot parse: {str(exc).strip().splitlines()[-1]}") from None
        except (OSError, EOFError, lzma.LZMAError) as exc:  # a corrupt compressed file
            raise UserError(f"{path}: cannot read: {exc}".splitlines()[0]) from None
        if no_header:
            df.columns = [str(c) for c in df.columns]
        blank = df.isna().all(axis=1).to_numpy()
        if blank.any():  # keep the index so messages still give true line numbers
            df = df[~blank]
        first_line = 1 if no_header else 2
    if len(df) == 0:
        raise UserError(f"{path}: has a header but no rows")
    columns = [str(c) for c in df.columns]
    df.columns = columns
    picked = {
        role: _pick_column(columns, role, options.get(role), path)
        for role in ("user", "item", "timestamp", "count")
    }
    picked["rating"] = (
        None if no_rating else _pick_column(columns, "rating", options.get("rating"), path)
    )
    if "count" in options:
        picked["rating"] = None  # the named count column is the value, not a rating
    elif picked["rating"] is not None:
        picked["count"] = None  # a rating column wins over a detected count column
    for role in ("user", "item"):
        if picked[role] is None:
            raise UserError(
                f"{path}: no {role} column (looked for {', '.join(COLUMN_SPELLINGS[role])}; "
                f"name it with ?{role}=COLUMN); columns are: {', '.join(columns)}"
            )
    value_kind = "rating"
    if picked["rating"] is None:
        others = [c for c in columns if c not in picked.values()]
        if picked["count"] is not None:
            value_kind = "count"
        elif no_rating or not others:  # only user, item[, timestamp]: interactions
            value_kind = "presence"
        else:  # an unrecognised column may be the rating: do not guess
            raise UserError(
                f"{path}: no rating column (looked for {', '.join(COLUMN_SPELLINGS['rating'])}; "
                "name it with ?rating=COLUMN, or ?count=COLUMN or ?rating=none for "
                f"implicit-only data); columns are: {', '.join(columns)}"
            )
    positions = df.index.to_numpy()
    raw = RawRatings(
        np.empty(0), np.empty(0), np.empty(0), None, label=str(path), first_line=first_line
    )

    def where(i: int) -> str:
        return raw.where(int(positions[i]))

    ids = {}
    for role in ("user", "item"):
        col = df[picked[role]]
        missing = col.isna().to_numpy()
        if not missing.any():
            ids[role] = parse_ids(col)
            if ids[role].dtype == object:
                missing = ids[role] == ""  # only spaces (ids are stripped)
        if missing.any():
            raise UserError(f"{where(int(np.flatnonzero(missing)[0]))}: {role} id is missing")
    if value_kind == "presence":
        ratings = np.ones(len(df), dtype=np.float64)
    else:
        value_name = value_kind  # "rating" or "count"
        rating_text = df[picked[value_kind]]
        ratings = pd.to_numeric(rating_text, errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(ratings))
        if len(bad):
            i = int(bad[0])
            value = rating_text.iloc[i]
            if pd.isna(value) or str(value).strip() == "":
                raise UserError(f"{where(i)}: {value_name} is missing or NaN")
            raise UserError(f"{where(i)}: {value_name} {value!r} is not a number")
        if value_kind == "count":
            bad = np.flatnonzero(ratings <= 0)
            if len(bad):
                i = int(bad[0])
                raise UserError(
                    f"{where(i)}: count {ratings[i]:g} is not positive (a row is an interaction)"
                )
    raw.users, raw.items = ids["user"], ids["item"]
    raw.ratings = ratings
    raw.value_kind = value_kind
    if picked["timestamp"] is not None:
        ts_text = df[picked["timestamp"]].reset_index(drop=True)
        raw.timestamps = _timestamps(ts_text, where)
    # Line numbers must follow the surviving rows (blank lines were removed).
    raw.extra_meta["row_positions"] = positions
    raw.extra_meta["columns"] = {k: v for k, v in picked.items() if v is not None}
    return raw


def parse_table(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    """A registry entry whose ratings are one generic table (options as for ``csv:``)."""
    member = src.first("ratings")
    if src._is_zip:
        raise UserError(f"{src.root}: format 'table' reads a plain file, not an archive member")
    return read_table(src.root / member, {k: str(v) for k, v in options.items()})
