"""Side information shared by the MovieLens-style readers: (entity, "name=value") feature
pairs for genres and demographics, titles with their year, ``::``-separated lines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


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


def user_pairs(
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


def split_genres(ids: np.ndarray, genres: pd.Series, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """Long (id, "genre=X") pairs from a column of ``sep``-joined genre lists."""
    exploded = genres.fillna("").astype(str).str.split(sep, regex=False).explode()
    owner = np.asarray(ids)[exploded.index.to_numpy()]
    names = exploded.to_numpy(dtype=str)
    keep = (names != "") & (names != "(no genres listed)")
    return owner[keep], np.char.add("genre=", names[keep])


def titles_with_year(titles: pd.Series, years: pd.Series) -> np.ndarray:
    years = years.fillna("").astype(str).str.replace(r"\.0$", "", regex=True)
    has_year = years.str.fullmatch(r"\d{4}")
    out = titles.fillna("").astype(str).where(~has_year, titles.astype(str) + " (" + years + ")")
    return out.to_numpy(dtype=str)


def read_lines_split(text: str, sep: str, n_fields: int) -> pd.DataFrame:
    """Split lines on a multi-character separator (``::``) keeping separators in the last field."""
    lines = pd.Series([ln for ln in text.splitlines() if ln])
    return lines.str.split(sep, n=n_fields - 1, regex=False, expand=True)
