"""Netflix Prize: ``combined_data_*.txt`` (the Kaggle copy) or ``training_set/mv_*.txt``,
with ``movie_titles.csv``."""

from __future__ import annotations

import io
import re
from typing import IO, Any

import numpy as np
import pandas as pd

from bench.data.readers.raw import RawRatings, SourceFiles
from bench.data.readers.side import read_lines_split, titles_with_year
from bench.errors import UserError

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
        titles = read_lines_split(src.read_text("items", "latin-1"), ",", 3)
        ids = titles[0].astype(np.int64).to_numpy()
        raw.item_titles = (ids, titles_with_year(titles[2], titles[1]))
    return raw
