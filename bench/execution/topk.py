"""Each trial's top-K recommendation lists, stored beside its record with raw ids.

The lists are what the trial's ranking metrics were computed from: for every evaluated
user (users with at least one relevant test item), the first K items of the full-catalogue
ranking with the user's train items excluded, K being the largest cut-off of the trial's
metrics.  Stored so that metrics nobody computed at run time can be computed later
(``bench.results.topk`` reads them).

One compressed ``.npz`` per trial, ``<results>/runs/topk/<trial_id>.npz``, written by the
driver only (a worker returns the arrays with the record, as it does per-user metrics):

* ``user``: the evaluated users' internal codes (int32; as in the per-user file);
* ``user_id``: their raw ids (the dataset's own ids, as read);
* ``item``: ``(users, K)`` internal item codes, int32, best first, ``-1`` where a user has
  fewer than K candidate items;
* ``item_code`` / ``item_id``: the sorted internal codes of the items that appear in
  ``item`` and their raw ids (only those: the table stays small on large catalogues).

The record names the file (``topk_file``), its sha256 (``topk_sha256``) and K
(``topk_k``); readers refuse a file that does not match its checksum.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.execution import store

#: padding in ``item`` where a user has fewer than K candidates (``ranking.NO_ITEM``)
NO_ITEM = -1
#: the arrays of a top-K file
ARRAYS = ("user", "user_id", "item", "item_code", "item_id")


def _ids(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Raw ids of ``codes``; object arrays (mixed or string ids) become text, so the file
    loads without pickle."""
    ids = np.asarray(table)[codes]
    return ids.astype(str) if ids.dtype == object else ids


def arrays(users: np.ndarray, top: np.ndarray, user_ids: np.ndarray,
           item_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The top-K file's arrays from the evaluated ``users`` (internal codes), their ``top``
    item codes (``NO_ITEM``-padded) and the dataset's code -> raw id tables."""
    top = np.ascontiguousarray(top, dtype=np.int32)
    codes = np.unique(top[top != NO_ITEM]).astype(np.int32)
    return {
        "user": np.asarray(users, dtype=np.int32),
        "user_id": _ids(user_ids, users),
        "item": top,
        "item_code": codes,
        "item_id": _ids(item_ids, codes),
    }


def save(results_dir: Path, trial_id: str, lists: dict[str, np.ndarray]) -> tuple[str, str]:
    """Write a trial's top-K file: (path relative to the results dir, its sha256)."""
    rel = Path("runs") / "topk" / f"{trial_id}.npz"
    path = Path(results_dir) / rel
    store.write_atomic(path, lambda fh: np.savez_compressed(fh, **lists))
    return str(rel), store.sha256_file(path)


def intact(results_dir: Path, rec: dict) -> bool:
    """A record's top-K file, when it names one, exists and matches its checksum."""
    rel = rec.get("topk_file")
    if not rel:
        return True
    path = Path(results_dir) / rel
    return path.is_file() and store.sha256_file(path) == rec.get("topk_sha256")


def read(results_dir: Path, rec: dict) -> dict[str, np.ndarray]:
    """The arrays of a record's top-K file, checked against the record's sha256; a record
    without one, or a file absent or damaged, is a ``UserError`` saying which."""
    rel = rec.get("topk_file")
    if not rel:
        why = ("it did not finish" if rec.get("status") != "ok" else
               "it ranks nothing or ran with top-K lists off (--no-topk)")
        raise UserError(f"trial {rec['trial_id']} ({rec['adapter']}) has no top-K lists: {why}")
    path = Path(results_dir) / rel
    if not path.is_file():
        raise FileNotFoundError(f"top-K file {path} of trial {rec['trial_id']} is missing")
    if store.sha256_file(path) != rec.get("topk_sha256"):
        raise UserError(f"top-K file {path} does not match the sha256 its record keeps: "
                        "damaged or replaced; re-run the trial (`--retry-failed` is not "
                        "needed: a resumed run redoes it)")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {name: z[name] for name in ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise UserError(f"top-K file {path} cannot be read: {exc}") from None
    return out


def long_form(lists: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Columns ``user``, ``rank`` (1 = first), ``item`` in raw ids plus ``user_index`` /
    ``item_index`` (internal codes), one row per listed item (padding left out)."""
    top = lists["item"]
    n_users, k = top.shape
    keep = (top != NO_ITEM).ravel()
    rows = np.repeat(np.arange(n_users), k)[keep]
    codes = top.ravel()[keep]
    return {
        "user": lists["user_id"][rows],
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n_users)[keep],
        "item": lists["item_id"][np.searchsorted(lists["item_code"], codes)],
        "user_index": lists["user"][rows],
        "item_index": codes,
    }
