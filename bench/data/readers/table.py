"""Parsers for each raw format, the CSV / TSV / parquet table loader, and validation.

Every parser turns raw files into ``RawRatings`` (raw ids, long-format side features);
``build_dataset`` then assigns dense codes, drops duplicate pairs and builds ``Features``,
so each format only has to know how its files are laid out.
"""

from __future__ import annotations

import csv
import io
import logging
import lzma
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data import input_checks
from bench.data.model import Dataset, Features, Ratings
from bench.errors import UserError

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------
# Intermediate form shared by all parsers
# ----------------------------------------------------------------------------------------


@dataclass
class RawRatings:
    """Ratings with raw ids, as parsed; side features as (entity raw id, feature name) pairs."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray | None
    label: str  # file named in error messages
    first_line: int = 1  # line number of row 0 in ``label`` (for messages); 0: no lines
    item_feature_pairs: tuple[np.ndarray, np.ndarray] | None = None
    user_feature_pairs: tuple[np.ndarray, np.ndarray] | None = None
    item_titles: tuple[np.ndarray, np.ndarray] | None = None  # (raw item ids, titles)
    #: what ``ratings`` hold: explicit ratings, or implicit-only data (``Dataset.value_kind``)
    value_kind: str = "rating"
    extra_meta: dict[str, Any] = field(default_factory=dict)

    def where(self, index: int) -> str:
        """``file line N`` (text files) or ``file row N`` (1-based) for row ``index``."""
        if self.first_line > 0:
            return f"{self.label} line {index + self.first_line}"
        return f"{self.label} row {index + 1}"


class SourceFiles:
    """Named input files of one source: a zip archive's members or files in a directory.

    ``files`` maps a role (``ratings``, ``items``, ``users``, ...) to one glob pattern or a
    list of them, relative to the archive root or directory.
    """

    def __init__(self, root: Path, files: dict[str, str | list[str]]) -> None:
        self.root = root
        self.files = files
        self._is_zip = root.is_file()
        if self._is_zip:
            with zipfile.ZipFile(root) as zf:
                self._names = sorted(n for n in zf.namelist() if not n.endswith("/"))
        else:
            self._names = sorted(
                str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("*") if p.is_file()
            )

    def _patterns(self, role: str) -> list[str]:
        spec = self.files.get(role, [])
        return [spec] if isinstance(spec, str) else list(spec)

    def members(self, role: str) -> list[str]:
        """Paths matching ``role``'s patterns, in pattern order then sorted."""
        out: list[str] = []
        for pattern in self._patterns(role):
            out += [n for n in self._names if fnmatch(n, pattern) and n not in out]
        return out

    def has(self, role: str) -> bool:
        return bool(self.members(role))

    def missing(self, roles: list[str]) -> list[str]:
        return [" or ".join(self._patterns(r)) for r in roles if not self.has(r)]

    def label(self, member: str) -> str:
        return f"{self.root.name}:{member}" if self._is_zip else str(self.root / member)

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        if self._is_zip:
            with zipfile.ZipFile(self.root) as zf, zf.open(member) as f:
                yield f
        else:
            with open(self.root / member, "rb") as f:
                yield f

    def first(self, role: str) -> str:
        found = self.members(role)
        if not found:
            raise UserError(
                f"{self.root}: no file for {role} ({' or '.join(self._patterns(role))})"
            )
        return found[0]

    def read_text(self, role: str, encoding: str = "utf-8") -> str:
        with self.open(self.first(role)) as f:
            return f.read().decode(encoding)


Parser = Callable[[SourceFiles, dict[str, Any]], RawRatings]
FORMATS: dict[str, Parser] = {}


def parser(name: str) -> Callable[[Parser], Parser]:
    """Register a parser under the ``format`` name registry entries use."""

    def register(fn: Parser) -> Parser:
        FORMATS[name] = fn
        return fn

    return register


# ----------------------------------------------------------------------------------------
# Shared helpers for MovieLens-style side information
# ----------------------------------------------------------------------------------------


def _pairs(ids: np.ndarray, prefix: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values).astype(str)
    keep = (values != "") & (values != "nan")
    names = np.char.add(f"{prefix}=", values[keep])
    return np.asarray(ids)[keep], names


def _concat_pairs(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _age_labels(ages: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """Bucket ages (raw years or ML-1M's bucket codes) into the entry's labelled bands."""
    buckets = options.get("age_buckets")
    if not buckets:
        return np.asarray(ages).astype(str)
    edges = np.asarray(buckets["edges"], dtype=np.float64)
    labels = np.asarray(buckets["labels"], dtype=object)
    idx = np.searchsorted(edges, np.asarray(ages, dtype=np.float64), side="right")
    return labels[idx].astype(str)


def _user_pairs(
    ids: np.ndarray,
    ages: np.ndarray,
    genders: np.ndarray,
    occupations: np.ndarray,
    options: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    return _concat_pairs(
        [
            _pairs(ids, "age", _age_labels(ages, options)),
            _pairs(ids, "gender", genders),
            _pairs(ids, "occupation", occupations),
        ]
    )


def _split_genres(ids: np.ndarray, genres: pd.Series, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """Long (id, "genre=X") pairs from a column of ``sep``-joined genre lists."""
    exploded = genres.fillna("").astype(str).str.split(sep, regex=False).explode()
    owner = np.asarray(ids)[exploded.index.to_numpy()]
    names = exploded.to_numpy(dtype=str)
    keep = (names != "") & (names != "(no genres listed)")
    return owner[keep], np.char.add("genre=", names[keep])


def _titles_with_year(titles: pd.Series, years: pd.Series) -> np.ndarray:
    years = years.fillna("").astype(str).str.replace(r"\.0$", "", regex=True)
    has_year = years.str.fullmatch(r"\d{4}")
    out = titles.fillna("").astype(str).where(~has_year, titles.astype(str) + " (" + years + ")")
    return out.to_numpy(dtype=str)


def _read_lines_split(text: str, sep: str, n_fields: int) -> pd.DataFrame:
    """Split lines on a multi-character separator (``::``) keeping separators in the last field."""
    lines = pd.Series([ln for ln in text.splitlines() if ln])
    return lines.str.split(sep, n=n_fields - 1, regex=False, expand=True)


# ----------------------------------------------------------------------------------------
# MovieLens 100K (GroupLens zip: u.data, u.item, u.user, u.genre)
# ----------------------------------------------------------------------------------------


@parser("movielens-100k")
def parse_movielens_100k(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    member = src.first("ratings")
    with src.open(member) as f:
        df = pd.read_csv(
            f,
            sep="\t",
            header=None,
            names=["user", "item", "rating", "timestamp"],
            dtype={"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64},
        )
    raw = RawRatings(
        df["user"].to_numpy(),
        df["item"].to_numpy(),
        df["rating"].to_numpy(),
        df["timestamp"].to_numpy(),
        label=src.label(member),
    )
    if src.has("genres"):  # u.genre: "name|index" lines, in column order
        genre_text = src.read_text("genres", "latin-1")
        genres = [ln.split("|")[0] for ln in genre_text.splitlines() if ln.strip()]
    else:
        genres = list(options.get("genres", []))
    if src.has("items"):
        text = src.read_text("items", "latin-1")
        items = pd.read_csv(
            io.StringIO(text), sep="|", header=None, dtype=str, quoting=csv.QUOTE_NONE
        )
        ids = items[0].astype(np.int64).to_numpy()
        flags = items.iloc[:, 5 : 5 + len(genres)].astype(np.int8).to_numpy()
        row, col = np.nonzero(flags)
        raw.item_feature_pairs = (ids[row], np.char.add("genre=", np.asarray(genres)[col]))
        raw.item_titles = (ids, items[1].fillna("").to_numpy(dtype=str))
    if src.has("users"):
        text = src.read_text("users", "latin-1")
        users = pd.read_csv(io.StringIO(text), sep="|", header=None, dtype=str)
        raw.user_feature_pairs = _user_pairs(
            users[0].astype(np.int64).to_numpy(),
            users[1].astype(np.int64).to_numpy(),
            users[2].to_numpy(),
            users[3].to_numpy(),
            options,
        )
    return raw


# ----------------------------------------------------------------------------------------
# RecBole atomic files (.inter / .item / .user with "name:type" headers)
# ----------------------------------------------------------------------------------------


def _read_atomic(src: SourceFiles, role: str) -> pd.DataFrame:
    with src.open(src.first(role)) as f:
        df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


@parser("recbole-atomic")
def parse_recbole_atomic(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    fields = {
        "user": "user_id",
        "item": "item_id",
        "rating": "rating",
        "timestamp": "timestamp",
        "title": "movie_title",
        "year": "release_year",
        "genres": "class",
        "age": "age",
        "gender": "gender",
        "occupation": "occupation",
        **options.get("fields", {}),
    }
    member = src.first("ratings")
    inter = _read_atomic(src, "ratings")
    ts = None
    if fields["timestamp"] in inter:
        ts = pd.to_numeric(inter[fields["timestamp"]]).to_numpy().astype(np.int64)
    raw = RawRatings(
        pd.to_numeric(inter[fields["user"]]).to_numpy(np.int64),
        pd.to_numeric(inter[fields["item"]]).to_numpy(np.int64),
        pd.to_numeric(inter[fields["rating"]], errors="coerce").to_numpy(np.float64),
        ts,
        label=src.label(member),
        first_line=2,
    )
    if src.has("items"):
        items = _read_atomic(src, "items")
        ids = pd.to_numeric(items[fields["item"]]).to_numpy(np.int64)
        if fields["genres"] in items:
            raw.item_feature_pairs = _split_genres(ids, items[fields["genres"]], " ")
        if fields["title"] in items:
            year = items.get(fields["year"], pd.Series([""] * len(items)))
            raw.item_titles = (ids, _titles_with_year(items[fields["title"]], year))
    if src.has("users"):
        users = _read_atomic(src, "users")
        raw.user_feature_pairs = _user_pairs(
            pd.to_numeric(users[fields["user"]]).to_numpy(np.int64),
            pd.to_numeric(users[fields["age"]]).to_numpy(),
            users[fields["gender"]].to_numpy(),
            users[fields["occupation"]].to_numpy(),
            options,
        )
    return raw


# ----------------------------------------------------------------------------------------
# MovieLens 1M ("::"-separated ratings.dat / movies.dat / users.dat, latin-1)
# ----------------------------------------------------------------------------------------


@parser("movielens-1m")
def parse_movielens_1m(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    member = src.first("ratings")
    with src.open(member) as f:
        # "::" is two one-character separators with an empty field between them.
        df = pd.read_csv(f, sep=":", header=None, usecols=[0, 2, 4, 6], dtype=np.int64)
    raw = RawRatings(
        df[0].to_numpy(),
        df[2].to_numpy(),
        df[4].to_numpy().astype(np.float64),
        df[6].to_numpy(),
        label=src.label(member),
    )
    if src.has("items"):
        movies = _read_lines_split(src.read_text("items", "latin-1"), "::", 3)
        ids = movies[0].astype(np.int64).to_numpy()
        raw.item_feature_pairs = _split_genres(ids, movies[2], "|")
        raw.item_titles = (ids, movies[1].to_numpy(dtype=str))
    if src.has("users"):
        users = _read_lines_split(src.read_text("users", "latin-1"), "::", 5)
        occupation_names = np.asarray(options.get("occupations", []), dtype=object)
        occ = users[3].astype(np.int64).to_numpy()
        occ_names = occupation_names[occ].astype(str) if len(occupation_names) else occ.astype(str)
        raw.user_feature_pairs = _user_pairs(
            users[0].astype(np.int64).to_numpy(),
            users[2].astype(np.int64).to_numpy(),
            users[1].to_numpy(),
            occ_names,
            options,
        )
    return raw


# ----------------------------------------------------------------------------------------
# MovieLens CSV releases (ml-latest-small, ml-20m/25m/32m: ratings.csv, movies.csv)
# ----------------------------------------------------------------------------------------


@parser("movielens-csv")
def parse_movielens_csv(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    member = src.first("ratings")
    with src.open(member) as f:
        df = pd.read_csv(
            f,
            dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float64},
            usecols=["userId", "movieId", "rating", "timestamp"],
        )
    raw = RawRatings(
        df["userId"].to_numpy(),
        df["movieId"].to_numpy(),
        df["rating"].to_numpy(),
        df["timestamp"].to_numpy().astype(np.int64),
        label=src.label(member),
        first_line=2,
    )
    del df
    if src.has("items"):
        with src.open(src.first("items")) as f:
            movies = pd.read_csv(f, dtype={"movieId": np.int64, "title": str, "genres": str})
        ids = movies["movieId"].to_numpy()
        raw.item_feature_pairs = _split_genres(ids, movies["genres"], "|")
        raw.item_titles = (ids, movies["title"].fillna("").to_numpy(dtype=str))
    return raw


# ----------------------------------------------------------------------------------------
# Netflix Prize (combined_data_*.txt from the Kaggle copy, or training_set/mv_*.txt)
# ----------------------------------------------------------------------------------------


_NETFLIX_HEADER = re.compile(rb"^(\d+):\r?$\n?", re.MULTILINE)


def _read_netflix_block(f: IO[bytes]) -> pd.DataFrame:
    """One file of "MovieID:" header lines each followed by "CustomerID,Rating,Date" rows.

    Header lines are cut out with one regex pass (a loop over movies, never over ratings);
    dates are split into integer year, month and day so no per-row strings are made.
    """
    data = f.read()
    headers = list(_NETFLIX_HEADER.finditer(data))
    if not headers:
        return pd.DataFrame({"user": [], "item": [], "rating": [], "timestamp": []})
    bodies = [
        data[h.end() : (headers[k + 1].start() if k + 1 < len(headers) else len(data))]
        for k, h in enumerate(headers)
    ]
    del data
    rows_per_movie = [b.count(b"\n") + (1 if b and not b.endswith(b"\n") else 0) for b in bodies]
    movies = np.repeat(np.array([int(h.group(1)) for h in headers]), rows_per_movie)
    body = b"".join(b if b.endswith(b"\n") or not b else b + b"\n" for b in bodies)
    del bodies
    df = pd.read_csv(
        io.BytesIO(body.replace(b"-", b",")),
        header=None,
        names=["user", "rating", "year", "month", "day"],
        dtype=np.int64,
    )
    days = pd.to_datetime(df[["year", "month", "day"]]).to_numpy().astype("datetime64[s]")
    return pd.DataFrame(
        {
            "user": df["user"].to_numpy(),
            "item": movies,
            "rating": df["rating"].to_numpy().astype(np.float32),
            "timestamp": days.astype(np.int64),
        }
    )


@parser("netflix-prize")
def parse_netflix(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    members = src.members("ratings")
    if not members:
        raise UserError(f"{src.root}: no Netflix Prize rating files found")
    blocks = []
    for member in members:  # a handful of big files, or 17,770 small ones
        with src.open(member) as f:
            blocks.append(_read_netflix_block(f))
    df = pd.concat(blocks, ignore_index=True)
    del blocks
    raw = RawRatings(
        df["user"].to_numpy(),
        df["item"].to_numpy(),
        df["rating"].to_numpy().astype(np.float64),
        df["timestamp"].to_numpy(),
        label=src.label(members[0]) if len(members) == 1 else str(src.root),
        first_line=0,
    )
    if src.has("items"):  # movie_titles.csv: "id,year,title" (titles contain commas)
        titles = _read_lines_split(src.read_text("items", "latin-1"), ",", 3)
        ids = titles[0].astype(np.int64).to_numpy()
        raw.item_titles = (ids, _titles_with_year(titles[2], titles[1]))
    return raw


# ----------------------------------------------------------------------------------------
# Generic tables: CSV / TSV / parquet with detected or given column names
# ----------------------------------------------------------------------------------------

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
_INT64_MAX = str(np.iinfo(np.int64).max)  # 19 digits
_INT64_MIN_ABS = str(np.iinfo(np.int64).min)[1:]  # 19 digits


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


# -- ids: opaque labels ---------------------------------------------------------------------


def _text(values: pd.Series | np.ndarray) -> Any:
    """Ids as stripped text (numbers by their ``str``): an arrow ``large_string`` array.

    Arrow's vectorised string kernels keep a many-million-row id column fast.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pd.Series(values) if isinstance(values, np.ndarray) else values
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        obj = values.to_numpy(dtype=object)
    else:
        obj = values.astype(object).map(str).to_numpy(dtype=object)
    return pc.utf8_trim_whitespace(pa.array(obj, type=pa.large_string()))


def _canonical_int(text: Any) -> np.ndarray:
    """Mask of the texts (``_text``) that are an integer written canonically within int64.

    Canonical: an optional minus sign, digits without leading zeros ("0" itself, never
    "-0"), no exponent, no decimal point, no sign "+", no inner spaces.  Only such ids may
    become numbers: ``007`` and ``7``, ``1e3`` and ``1000`` are different labels.
    """
    import pyarrow.compute as pc

    ok = pc.match_substring_regex(text, r"^(?:0|-?[1-9][0-9]*)$")
    digits = pc.utf8_ltrim(text, characters="-")
    length = pc.utf8_length(digits)
    limit = pc.if_else(pc.starts_with(text, "-"), _INT64_MIN_ABS, _INT64_MAX)
    # 19 digits: the same length as the bound, so text order is numeric order
    fits = pc.or_(pc.less(length, 19), pc.and_(pc.equal(length, 19), pc.less_equal(digits, limit)))
    return pc.and_(ok, fits).to_numpy(zero_copy_only=False).astype(bool)


def _ids(values: pd.Series) -> np.ndarray:
    """Raw ids of one column: int64 when every value is an integer id, else strings.

    Integer columns stay int64 (uint64 values above the int64 range make the column text);
    float columns become int64 only when every value is integral and below 2**53 in
    magnitude (exact in a float); text columns only when every value is a canonical integer
    in the int64 range (``_canonical_int``).  Nothing goes through float, so distinct ids
    always stay distinct.  Text ids are stripped of surrounding spaces.
    """
    import pyarrow as pa

    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    as_text = False
    if pd.api.types.is_bool_dtype(values.dtype):
        as_text = True
    elif pd.api.types.is_integer_dtype(values.dtype):
        if pd.api.types.is_unsigned_integer_dtype(values.dtype) and len(values):
            as_text = int(values.max()) > np.iinfo(np.int64).max
        if not as_text:
            return values.to_numpy(np.int64)
    elif pd.api.types.is_float_dtype(values.dtype):
        a = values.to_numpy(np.float64)
        if np.isfinite(a).all() and (a == np.floor(a)).all() and (np.abs(a) < 2.0**53).all():
            return a.astype(np.int64)
        as_text = True
    text = _text(values)
    if not as_text and _canonical_int(text).all():
        return text.cast(pa.int64()).to_numpy()  # exact: parsed as integers, never floats
    return text.to_numpy(zero_copy_only=False).astype(object)


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
            ids[role] = _ids(col)
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


@parser("table")
def parse_table(src: SourceFiles, options: dict[str, Any]) -> RawRatings:
    """A registry entry whose ratings are one generic table (options as for ``csv:``)."""
    member = src.first("ratings")
    if src._is_zip:
        raise UserError(f"{src.root}: format 'table' reads a plain file, not an archive member")
    return read_table(src.root / member, {k: str(v) for k, v in options.items()})


# ----------------------------------------------------------------------------------------
# Validation and coding into the shared data model
# ----------------------------------------------------------------------------------------


def check_scale(raw: RawRatings, scale: tuple[float, float]) -> None:
    """UserError naming the first row whose rating is NaN or outside ``scale``."""
    r = raw.ratings
    lo, hi = scale
    over = input_checks.float32_overflow(r)
    if over is not None:
        positions = raw.extra_meta.get("row_positions")
        where = raw.where(int(positions[over]) if positions is not None else over)
        raise UserError(f"{where}: rating {r[over]:g} is beyond what a float32 holds "
                        f"(|rating| <= {input_checks.FLOAT32_MAX:.4g})")
    bad = np.flatnonzero(~np.isfinite(r) | (r < lo) | (r > hi))
    if len(bad) == 0:
        return
    i = int(bad[0])
    positions = raw.extra_meta.get("row_positions")
    where = raw.where(int(positions[i]) if positions is not None else i)
    if not np.isfinite(r[i]):
        raise UserError(f"{where}: rating is not a number")
    raise UserError(f"{where}: rating {r[i]:g} is outside the rating scale {lo:g}-{hi:g}")


def _code(raw_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique raw ids, int32 code of every row).

    Ids are int64 (sorted numerically) or strings (sorted as text), as ``_ids`` makes them;
    any other array is first brought to one of those two kinds.
    """
    raw_ids = np.asarray(raw_ids)
    if raw_ids.dtype.kind == "i":
        raw_ids = raw_ids.astype(np.int64, copy=False)
    elif raw_ids.dtype.kind != "O":  # "O": text ids from ``_ids``
        raw_ids = _ids(pd.Series(raw_ids))
    uniq, codes = np.unique(raw_ids, return_inverse=True)
    return uniq, codes.astype(np.int32, copy=False)


def _lookup(uniq: np.ndarray, raw_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``raw_ids`` in ``uniq`` and a mask of those present.

    ``raw_ids`` (e.g. the ids of an items file) match by the same rule as the ratings' ids:
    with integer ``uniq`` only canonical integers match (``"007"`` is not item 7); with
    text ``uniq`` an integer id matches its decimal text.
    """
    raw = _ids(pd.Series(np.asarray(raw_ids)))
    if uniq.dtype.kind in "iu":
        if raw.dtype.kind in "iu":
            ok = np.ones(len(raw), dtype=bool)
        else:  # text labels: only canonical integers in range can be one of ``uniq``
            ok = _canonical_int(_text(raw))
            values = np.zeros(len(raw), dtype=np.int64)
            values[ok] = raw[ok].astype(np.int64)
            raw = values
        raw = raw.astype(np.int64, copy=False)
    else:
        ok = np.ones(len(raw), dtype=bool)
        raw = raw.astype(str).astype(object) if raw.dtype.kind in "iu" else raw
    if len(uniq) == 0:
        return np.zeros(len(raw), dtype=np.int32), np.zeros(len(raw), dtype=bool)
    pos = np.clip(np.searchsorted(uniq, raw), 0, len(uniq) - 1)
    found = ok & np.asarray(uniq[pos] == raw, dtype=bool)
    return pos.astype(np.int32), found


def _features(
    uniq: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None,
    order: list[str] | None = None,
) -> Features | None:
    if pairs is None or len(pairs[0]) == 0:
        return None
    rows, found = _lookup(uniq, pairs[0])
    names = np.asarray(pairs[1]).astype(str)[found]
    rows = rows[found]
    present = set(np.unique(names).tolist())
    declared = [n for n in (order or []) if n in present]
    columns = declared + sorted(present - set(declared))
    col_of = {n: j for j, n in enumerate(columns)}
    cols = pd.Series(names).map(col_of).to_numpy(np.int32)
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(uniq), len(columns))
    )
    m.sum_duplicates()
    m.data[:] = 1.0  # one-hot: a feature listed twice is still one feature
    m.sort_indices()
    return Features(m, tuple(columns))


def dedupe_latest(
    users: np.ndarray, items: np.ndarray, n_items: int, timestamps: np.ndarray | None
) -> np.ndarray:
    """Row index keeping one row per (user, item): the latest timestamp, else the last row.

    The result is sorted by (user, item), the canonical row order of every dataset.
    """
    key = users.astype(np.int64) * n_items + items
    order = np.argsort(key, kind="stable")  # stable: equal keys stay in file order
    sorted_key = key[order]
    repeated = sorted_key[1:] == sorted_key[:-1]
    if not repeated.any():
        return order
    if timestamps is not None:  # reorder only the duplicated groups, by time then file order
        in_group = np.zeros(len(order), dtype=bool)
        in_group[1:] |= repeated
        in_group[:-1] |= repeated
        where = np.flatnonzero(in_group)
        rows = order[where]
        order[where] = rows[np.lexsort((timestamps[rows], key[rows]))]
    last_of_group = np.ones(len(order), dtype=bool)
    last_of_group[:-1] = ~repeated
    return order[last_of_group]


def build_dataset(
    raw: RawRatings,
    name: str,
    scale: tuple[float, float] | None,
    meta: dict[str, Any],
    genre_order: list[str] | None = None,
    age_order: list[str] | None = None,
) -> Dataset:
    """Validate, code (sorted raw ids -> 0..n-1), drop duplicate pairs, attach features.

    Implicit-only data (``raw.value_kind`` "presence" or "count") has the scale 0..max
    value whatever ``scale`` says: 0 is "no interaction".
    """
    if len(raw.ratings) == 0:
        raise UserError(f"{raw.label}: no ratings")
    if raw.value_kind != "rating":
        scale = (0.0, float(raw.ratings.max()))
        meta["value_kind"] = raw.value_kind
    elif scale is None:
        finite = raw.ratings[np.isfinite(raw.ratings)]
        if len(finite) == 0:
            raise UserError(f"{raw.where(0)}: rating is not a number")
        scale = (float(finite.min()), float(finite.max()))
        meta["rating_scale_inferred"] = True
    check_scale(raw, scale)
    user_ids, users = _code(raw.users)
    item_ids, items = _code(raw.items)
    n_rows = len(users)
    keep = dedupe_latest(users, items, len(item_ids), raw.timestamps)
    dropped = n_rows - len(keep)
    meta["rows_read"] = n_rows
    meta["duplicates_dropped"] = int(dropped)
    if dropped:
        log.info("%s: dropped %d duplicate (user, item) rows, kept the latest", raw.label, dropped)
    ts = None if raw.timestamps is None else raw.timestamps[keep].astype(np.int64)
    ratings = Ratings(
        users[keep],
        items[keep],
        raw.ratings[keep].astype(np.float32),
        ts,
        len(user_ids),
        len(item_ids),
    )
    titles = None
    if raw.item_titles is not None:
        pos, found = _lookup(item_ids, raw.item_titles[0])
        titles = np.full(len(item_ids), "", dtype=object)
        titles[pos[found]] = np.asarray(raw.item_titles[1], dtype=object)[found]
    if user_ids.dtype.kind not in "iu":
        user_ids = user_ids.astype(object)
    if item_ids.dtype.kind not in "iu":
        item_ids = item_ids.astype(object)
    genre_names = [f"genre={g}" for g in genre_order] if genre_order else None
    age_bands = [f"age={a}" for a in (age_order or [])]
    return Dataset(
        name=name,
        ratings=ratings,
        user_ids=user_ids,
        item_ids=item_ids,
        rating_scale=(float(scale[0]), float(scale[1])),
        item_features=_features(item_ids, raw.item_feature_pairs, genre_names),
        user_features=_features(user_ids, raw.user_feature_pairs, age_bands),
        item_titles=titles,
        meta=meta,
        value_kind=raw.value_kind,  # type: ignore[arg-type]
    )
