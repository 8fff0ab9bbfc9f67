"""Synthetic data written in the layouts of the real releases, to exercise their parsers.

The licences of MovieLens and the Netflix Prize forbid committing or redistributing their
files, so tests and benchmarks cannot ship them.  ``write`` turns any ``Dataset`` (usually
``synthetic:...`` at the real shape) into the files of one release's layout, plus a dataset
TOML that points the release's own registry entry (same ``format``, options and parser) at
them.  With ``RECBENCH_DATASETS_PATH=DIR`` that entry loads like a hand-placed download:

* ``ml-1m``: ``ratings.dat`` / ``movies.dat`` / ``users.dat`` with ``::`` separators;
* ``ml-25m`` / ``ml-32m`` (``movielens-csv``): ``ratings.csv`` and ``movies.csv``;
* ``netflix-prize``: ``combined_data_1..4.txt`` ("MovieID:" lines, then
  "CustomerID,Rating,YYYY-MM-DD" rows) and ``movie_titles.csv``.

Rows are written with pyarrow's CSV writer, a slice per movie for the Netflix layout (a
loop over movies, never over ratings), so 100M ratings take minutes, not hours.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from bench.data.model import Dataset
from bench.errors import UserError

log = logging.getLogger(__name__)

#: layout -> the registry entry whose parser reads it
LAYOUTS = {"ml-1m": "ml-1m", "ml-25m": "ml-25m", "ml-32m": "ml-32m",
           "netflix-prize": "netflix-prize"}
NETFLIX_FILES = 4
_NO_QUOTES = pacsv.WriteOptions(include_header=False, quoting_style="none")


def _genre_lists(ds: Dataset) -> list[str]:
    """"A|B" genre strings per item from one-hot ``genre=`` item features."""
    f = ds.item_features
    if f is None:
        return ["(no genres listed)"] * ds.n_items
    names = np.array([n.split("=", 1)[-1] for n in f.names], dtype=object)
    m = f.matrix.tocsr()
    return ["|".join(names[m.indices[m.indptr[i]:m.indptr[i + 1]]]) or "(no genres listed)"
            for i in range(ds.n_items)]  # once per item, for a small side file


def _timestamps(ds: Dataset) -> np.ndarray:
    r = ds.ratings
    if r.timestamps is not None:
        return r.timestamps.astype(np.int64)
    return np.full(len(r), 978_300_760, dtype=np.int64)  # a date inside ML-1M's range


def _stars(ds: Dataset, half: bool) -> np.ndarray:
    lo, hi = (0.5, 5.0) if half else (1.0, 5.0)
    step = 2.0 if half else 1.0
    return np.clip(np.round(ds.ratings.ratings.astype(np.float64) * step) / step, lo, hi)


def _write_ml1m(ds: Dataset, out: Path) -> dict[str, str]:
    r = ds.ratings
    empty = pa.nulls(len(r), pa.string())
    table = pa.table({"u": r.users + 1, "e1": empty, "i": r.items + 1, "e2": empty,
                      "r": _stars(ds, False).astype(np.int64), "e3": empty,
                      "t": _timestamps(ds)})
    # ":" with an empty (null) column between fields gives "::", as in the release
    pacsv.write_csv(table, out / "ratings.dat",
                    pacsv.WriteOptions(include_header=False, delimiter=":",
                                       quoting_style="none"))
    genres = _genre_lists(ds)
    movies = "".join(f"{i + 1}::Movie {i + 1} (2000)::{g}\n" for i, g in enumerate(genres))
    (out / "movies.dat").write_text(movies, encoding="latin-1")
    ages = (1, 18, 25, 35, 45, 50, 56)
    users = "".join(f"{u + 1}::{'MF'[u % 2]}::{ages[u % 7]}::{u % 21}::{10000 + u % 90000}\n"
                    for u in range(ds.n_users))
    (out / "users.dat").write_text(users, encoding="latin-1")
    return {"ratings": "ratings.dat", "items": "movies.dat", "users": "users.dat"}


def _write_movielens_csv(ds: Dataset, out: Path) -> dict[str, str]:
    r = ds.ratings
    table = pa.table({"userId": r.users + 1, "movieId": r.items + 1,
                      "rating": _stars(ds, True), "timestamp": _timestamps(ds)})
    pacsv.write_csv(table, out / "ratings.csv",
                    pacsv.WriteOptions(include_header=True, quoting_style="none"))
    genres = _genre_lists(ds)
    movies = pa.table({"movieId": np.arange(1, ds.n_items + 1),
                       "title": [f"Movie {i + 1} (2000)" for i in range(ds.n_items)],
                       "genres": genres})
    pacsv.write_csv(movies, out / "movies.csv")
    return {"ratings": "ratings.csv", "items": "movies.csv"}


def netflix_customer_ids(n_users: int) -> np.ndarray:
    """Sparse customer ids like the release's (1..2,649,429 for 480,189 customers)."""
    return np.arange(n_users, dtype=np.int64) * 5 + 6


def _write_netflix(ds: Dataset, out: Path) -> dict[str, str]:
    r = ds.ratings
    order = np.argsort(r.items, kind="stable")
    items = r.items[order]
    days = _timestamps(ds)[order].astype("datetime64[s]").astype("datetime64[D]")
    table = pa.table({"user": netflix_customer_ids(ds.n_users)[r.users[order]],
                      "rating": _stars(ds, False)[order].astype(np.int64),
                      "date": pa.array(days, pa.date32())})
    bounds = np.searchsorted(items, np.arange(ds.n_items + 1))
    # movies split over the files in contiguous runs, as in the Kaggle copy
    per_file = np.array_split(np.arange(ds.n_items), NETFLIX_FILES)
    for number, movies in enumerate(per_file, 1):
        with pa.OSFile(str(out / f"combined_data_{number}.txt"), "wb") as sink:
            for movie in movies:  # a loop over movies; rows go out as one slice each
                lo, hi = bounds[movie], bounds[movie + 1]
                if lo == hi:
                    continue
                sink.write(f"{movie + 1}:\n".encode())
                pacsv.write_csv(table.slice(lo, hi - lo), sink, _NO_QUOTES)
    titles = "".join(f"{i + 1},{2000 + i % 6},Movie {i + 1}, Part {i % 3 + 1}\n"
                     for i in range(ds.n_items))
    (out / "movie_titles.csv").write_text(titles, encoding="latin-1")
    return {"ratings": "combined_data_*.txt", "items": "movie_titles.csv"}


WRITERS = {"ml-1m": _write_ml1m, "ml-25m": _write_movielens_csv,
           "ml-32m": _write_movielens_csv, "netflix-prize": _write_netflix}


def entry_name(layout: str, data_name: str) -> str:
    """Name of the written dataset's registry entry, e.g. ``netflix-prize-layout-<hash>``."""
    import hashlib

    return f"{layout}-layout-{hashlib.sha256(data_name.encode()).hexdigest()[:8]}"


def write(ds: Dataset, layout: str, out: Path) -> tuple[str, Path]:
    """Write ``ds`` into ``out`` in ``layout``; returns (dataset name, TOML path)."""
    from bench.data import datasets

    if layout not in WRITERS:
        raise UserError(f"unknown layout {layout!r}; known: {', '.join(sorted(WRITERS))}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    real = datasets.get_entry(LAYOUTS[layout])
    files = WRITERS[layout](ds, out)
    name = entry_name(layout, ds.name)
    text = real_entry_text(real.path)
    toml = _retarget(text, name, ds, out, files)
    path = out / f"{name}.toml"
    path.write_text(toml, encoding="utf-8")
    log.info("wrote %s ratings in the %s layout to %s", f"{len(ds.ratings):,}", layout, out)
    return name, path


def real_entry_text(where: str) -> str:
    from importlib import resources

    if where.startswith("recbench_datasets/"):
        res = resources.files("recbench_datasets") / where.split("/", 1)[1]
        return res.read_text(encoding="utf-8")
    return Path(where).read_text(encoding="utf-8")


def _retarget(text: str, name: str, ds: Dataset, out: Path, files: dict[str, str]) -> str:
    """The real entry's TOML with its name, expected counts and sources replaced: format,
    rating scale and parser options stay the release's own."""
    head = text.split("[[sources]]", 1)[0]
    # a release's parser codes the users and items of its ratings file, so an item (or user)
    # without ratings, which synthetic: data may have, is not in the loaded catalogue
    users = int((ds.ratings.user_counts() > 0).sum())
    items = int((ds.ratings.item_counts() > 0).sum())
    head = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', head, count=1)
    head = re.sub(r'(?m)^title = "(.*)"$', rf'title = "\1, synthetic {ds.name}"', head,
                  count=1)
    head = re.sub(r'(?m)^size_hint = ".*"$',
                  f'size_hint = "{len(ds.ratings):,} ratings, {users:,} users, '
                  f'{items:,} items (synthetic)"', head, count=1)
    head = re.sub(r"(?ms)^\[expect\].*?(?=^\[)",
                  f"[expect]\nratings = {len(ds.ratings)}\nusers = {users}\n"
                  f"items = {items}\n\n", head, count=1)
    file_map = ", ".join(f'{k} = "{v}"' for k, v in files.items())
    return (f"{head}[[sources]]\nkind = \"manual\"\nsubdir = \"{out}\"\n"
            f"files = {{ {file_map} }}\n")
