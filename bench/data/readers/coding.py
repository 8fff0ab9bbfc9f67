"""Validation and coding of a reader's ``RawRatings`` into the data model: rating scale
checked, raw ids coded densely (sorted), duplicate pairs dropped, side features attached."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data import input_checks
from bench.data.model import Dataset, Features, Ratings
from bench.data.readers.ids import canonical_int, id_text, parse_ids
from bench.data.readers.raw import RawRatings
from bench.errors import UserError

log = logging.getLogger(__name__)


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

    Ids are int64 (sorted numerically) or strings (sorted as text), as ``parse_ids`` makes them;
    any other array is first brought to one of those two kinds.
    """
    raw_ids = np.asarray(raw_ids)
    if raw_ids.dtype.kind == "i":
        raw_ids = raw_ids.astype(np.int64, copy=False)
    elif raw_ids.dtype.kind != "O":  # "O": text ids from ``parse_ids``
        raw_ids = parse_ids(pd.Series(raw_ids))
    uniq, codes = np.unique(raw_ids, return_inverse=True)
    return uniq, codes.astype(np.int32, copy=False)


def _lookup(uniq: np.ndarray, raw_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``raw_ids`` in ``uniq`` and a mask of those present.

    ``raw_ids`` (e.g. the ids of an items file) match by the same rule as the ratings' ids:
    with integer ``uniq`` only canonical integers match (``"007"`` is not item 7); with
    text ``uniq`` an integer id matches its decimal text.
    """
    raw = parse_ids(pd.Series(np.asarray(raw_ids)))
    if uniq.dtype.kind in "iu":
        if raw.dtype.kind in "iu":
            ok = np.ones(len(raw), dtype=bool)
        else:  # text labels: only canonical integers in range can be one of ``uniq``
            ok = canonical_int(id_text(raw))
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
