"""Per-user values of stored records paired for a comparison: read from each record's
per-user file (or the run's pack), matched by (fold, user), per model seed when rows pool seeds.

Within a fold present on both sides, a user evaluated on one side only is scored 0 on the
other (``missing="zero"``) or dropped (``missing="drop"``); folds on one side only, or whose
dataset or split fingerprints differ, are left out and named in the comparison's note.
"""

from __future__ import annotations

import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.execution import store


def as_dirs(results_dir: Path | str | Sequence[Path | str]) -> tuple[Path, ...]:
    if isinstance(results_dir, str | Path):
        return (Path(results_dir),)
    return tuple(Path(d) for d in results_dir)


def load_arrays(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Only the two arrays needed (an .npz member is read on access), nothing cached."""
    with np.load(path) as data:
        if metric not in data.files or "user" not in data.files:
            return None
        return data["user"], data[metric]


def per_user_values(
    record: dict, results_dir: Path | str | Sequence[Path | str], metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(users, values) of ``metric`` stored for ``record``, or None when not stored."""
    rel = record.get("per_user_file")
    if not rel:
        return None
    arrays = None
    for d in as_dirs(results_dir):
        path = (d / rel).resolve()
        if path.is_file():
            try:
                arrays = load_arrays(path, metric)
            except (OSError, ValueError, zipfile.BadZipFile):
                return None  # unreadable (e.g. truncated): reported as no per-user values
            break
    else:  # no per-user file (published results): the run's compact pack, if any
        for d in as_dirs(results_dir):
            arrays = store.pack_values(record, d, metric)
            if arrays is not None:
                break
    if arrays is None:
        return None
    users = np.asarray(arrays[0], dtype=np.int64)
    values = np.asarray(arrays[1], dtype=np.float64)
    keep = ~np.isnan(values)  # an undefined value is a missing observation
    return users[keep], values[keep]


def fold_values(
    recs: list[dict], results_dir: Path | str | Sequence[Path | str], metric: str
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for r in recs:
        got = per_user_values(r, results_dir, metric)
        if got is not None:
            out[int(r["fold"])] = got
    return out


def seed_values(
    recs: list[dict], results_dir: Path | str | Sequence[Path | str], metric: str
) -> dict[object, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per model seed (``record["seed"]``), ``fold_values`` of that seed's records; seeds
    without any per-user values are left out."""
    by_seed: dict[object, list[dict]] = defaultdict(list)
    for r in recs:
        by_seed[r.get("seed")].append(r)
    out = {}
    for s in sorted(by_seed, key=lambda s: (s is None, str(s))):
        vals = fold_values(by_seed[s], results_dir, metric)
        if vals:
            out[s] = vals
    return out


def fold_prints(recs: list[dict]) -> dict[int, set[tuple]]:
    """Per fold, what identifies its rows in each record: dataset and split fingerprints
    (when recorded); several records per fold when a row has several seeds."""
    out: dict[int, set[tuple]] = defaultdict(set)
    for r in recs:
        out[int(r["fold"])].add((r.get("dataset_fingerprint"), r.get("split_fingerprint")))
    return out


def same_rows(a: tuple, b: tuple) -> bool:
    """False only when both sides recorded a fingerprint and they differ."""
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


@dataclass
class Paired:
    """One comparison's per-user sums of differences (indexed by the table's user index)."""

    diff_sum: np.ndarray
    count: np.ndarray
    n_pairs: int
    n_unpaired: int
    folds: tuple[int, ...]
    note: str


def pair(
    model: dict[int, tuple[np.ndarray, np.ndarray]],
    best: dict[int, tuple[np.ndarray, np.ndarray]],
    n_users: int,
    missing: str,
    unpairable: Sequence[int] = (),
) -> Paired:
    diff_sum = np.zeros(n_users)
    count = np.zeros(n_users)
    folds = tuple(sorted(set(model) & set(best)))
    n_pairs = n_unpaired = 0
    for f in folds:  # a handful of folds; users are vectorised
        (mu, mv), (bu, bv) = model[f], best[f]
        users = np.union1d(mu, bu)
        in_m, in_b = np.isin(users, mu), np.isin(users, bu)
        m_full = np.zeros(len(users))
        b_full = np.zeros(len(users))
        m_full[np.searchsorted(users, mu)] = mv
        b_full[np.searchsorted(users, bu)] = bv
        both = in_m & in_b
        keep = both if missing == "drop" else np.ones(len(users), bool)
        n_unpaired += int((~both).sum())
        n_pairs += int(keep.sum())
        diff_sum += np.bincount(users[keep], m_full[keep] - b_full[keep], minlength=n_users)
        count += np.bincount(users[keep], minlength=n_users)
    notes = []
    if unpairable:
        notes.append(
            f"fold(s) {', '.join(map(str, unpairable))} left out: dataset or split "
            "fingerprint differs from the best model's"
        )
    if only_best := sorted(set(best) - set(model) - set(unpairable)):
        notes.append(f"fold(s) {', '.join(map(str, only_best))} missing for this model")
    if only_model := sorted(set(model) - set(best)):
        notes.append(f"fold(s) {', '.join(map(str, only_model))} missing for the best model")
    if n_unpaired:
        how = "scored 0 on the missing side" if missing == "zero" else "dropped"
        notes.append(f"{n_unpaired} (fold, user) observations on one side only, {how}")
    return Paired(diff_sum, count, n_pairs, n_unpaired, folds, "; ".join(notes))


@dataclass
class SeedPaired:
    """One comparison with several seeds on a side: per user and seed, the sums over the
    compared folds of each seed's values (columns: the model's seeds, then the best's)."""

    model_sums: np.ndarray  # (n_users, n_model_seeds)
    best_sums: np.ndarray  # (n_users, n_best_seeds)
    count: np.ndarray  # (n_users,) compared (fold, user) observations
    n_pairs: int
    n_unpaired: int
    folds: tuple[int, ...]
    note: str


def pair_seeds(
    model: dict[object, dict[int, tuple[np.ndarray, np.ndarray]]],
    best: dict[object, dict[int, tuple[np.ndarray, np.ndarray]]],
    n_users: int,
    missing: str,
    unpairable: Sequence[int] = (),
) -> SeedPaired:
    """Like ``pair`` for sides with several seeds ({seed: {fold: (user index, values)}})."""
    sides = [*model.values(), *best.values()]
    n_model = len(model)
    every = set.intersection(*(set(d) for d in sides))
    some = set().union(*(set(d) for d in sides))
    folds = tuple(sorted(every - set(unpairable)))
    sums = np.zeros((n_users, len(sides)))
    count = np.zeros(n_users)
    n_pairs = n_unpaired = 0
    for f in folds:
        users = np.unique(np.concatenate([d[f][0] for d in sides]))
        full = np.zeros((len(users), len(sides)))
        present = np.ones(len(users), bool)
        for j, d in enumerate(sides):
            u, v = d[f]
            pos = np.searchsorted(users, u)
            full[pos, j] = v
            present &= np.isin(users, u)
        keep = present if missing == "drop" else np.ones(len(users), bool)
        n_unpaired += int((~present).sum())
        n_pairs += int(keep.sum())
        sums[users[keep]] += full[keep]  # user indices are unique within a fold
        count[users[keep]] += 1
    notes = []
    if unpairable:
        notes.append(
            f"fold(s) {', '.join(map(str, unpairable))} left out: dataset or split "
            "fingerprint differs from the best model's"
        )
    if partial := sorted(some - every - set(unpairable)):
        notes.append(
            f"fold(s) {', '.join(map(str, partial))} left out: not run by every seed of "
            "both models"
        )
    if n_unpaired:
        how = "scored 0 for the seeds missing them" if missing == "zero" else "dropped"
        notes.append(
            f"{n_unpaired} (fold, user) observations not in every seed of both sides, {how}"
        )
    return SeedPaired(
        sums[:, :n_model], sums[:, n_model:], count, n_pairs, n_unpaired, folds,
        "; ".join(notes),
    )
