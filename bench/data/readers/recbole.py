"""RecBole atomic files (``.inter`` / ``.item`` / ``.user`` with ``name:type`` headers), e.g.
the ml-100k copy in RecBole's wheel (the offline fallback)."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pandas as pd

from bench.data.readers.raw import RawRatings, SourceFiles
from bench.data.readers.side import split_genres, titles_with_year, user_pairs


def _read_atomic(src: SourceFiles, role: str) -> pd.DataFrame:
    with src.open(src.first(role)) as f:
        df = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


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
            raw.item_feature_pairs = split_genres(ids, items[fields["genres"]], " ")
        if fields["title"] in items:
            year = items.get(fields["year"], pd.Series([""] * len(items)))
            raw.item_titles = (ids, titles_with_year(items[fields["title"]], year))
    if src.has("users"):
        users = _read_atomic(src, "users")
        raw.user_feature_pairs = user_pairs(
            pd.to_numeric(users[fields["user"]]).to_numpy(np.int64),
            pd.to_numeric(users[fields["age"]]).to_numpy(),
            users[fields["gender"]].to_numpy(),
            users[fields["occupation"]].to_numpy(),
            options,
        )
    return raw
