"""MovieLens releases: 100K (GroupLens zip: u.data, u.item, u.user, u.genre), 1M
(``::``-separated .dat files, latin-1) and the CSV releases (ml-latest-small, ml-20m/25m/32m)."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pandas as pd

from bench.data.readers.raw import RawRatings, SourceFiles
from bench.data.readers.side import read_lines_split, split_genres, user_pairs


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
        raw.user_feature_pairs = user_pairs(
            users[0].astype(np.int64).to_numpy(),
            users[1].astype(np.int64).to_numpy(),
            users[2].to_numpy(),
            users[3].to_numpy(),
            options,
        )
    return raw


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
        movies = read_lines_split(src.read_text("items", "latin-1"), "::", 3)
        ids = movies[0].astype(np.int64).to_numpy()
        raw.item_feature_pairs = split_genres(ids, movies[2], "|")
        raw.item_titles = (ids, movies[1].to_numpy(dtype=str))
    if src.has("users"):
        users = read_lines_split(src.read_text("users", "latin-1"), "::", 5)
        occupation_names = np.asarray(options.get("occupations", []), dtype=object)
        occ = users[3].astype(np.int64).to_numpy()
        occ_names = occupation_names[occ].astype(str) if len(occupation_names) else occ.astype(str)
        raw.user_feature_pairs = user_pairs(
            users[0].astype(np.int64).to_numpy(),
            users[2].astype(np.int64).to_numpy(),
            users[1].to_numpy(),
            occ_names,
            options,
        )
    return raw


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
        raw.item_feature_pairs = split_genres(ids, movies["genres"], "|")
        raw.item_titles = (ids, movies["title"].fillna("").to_numpy(dtype=str))
    return raw
