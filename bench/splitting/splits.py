"""Split protocols shared by every model: one seeded assignment per (dataset, protocol).

A split is stored as one int8 array ``fold_of_row`` over the dataset's rows: for fold ``f``
the test rows are ``fold_of_row == f`` and the train rows are everything else.  Hold-out
splits have a single fold 0 (train rows are -1); k-fold has folds 0..k-1.  The array is
computed once, fingerprinted with the dataset, and stored under ``results/splits/`` so every
adapter of a suite, in any process or on any machine sharing the results store, sees
byte-identical train / test rows.  A validation split for tuning is carved out of a fold's
train rows by the same protocol with a derived seed; it never reads test rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.data.model import Ratings
from bench.errors import StoreFault, UserError
from bench.execution import store

log = logging.getLogger(__name__)

METHODS = ("random", "stratified", "item_stratified", "kfold", "temporal", "leave_last",
           "cold_users", "cold_items")
TRAIN = -1
#: Rows of a held-out (cold) user that it reveals: train rows for models that are refitted,
#: the fold-in input for models that fold new users in without refitting.
REVEALED = -2
#: Train rows left out by ``train_fraction`` < 1 (the learning-curve ablation): in no set.
UNUSED = -3
#: second word of the k-fold permutation's seed (see ``assign``)
KFOLD_STREAM = 5


@dataclass(frozen=True)
class SplitSpec:
    """A split protocol, as data.

    * ``random``: a uniformly random ``test_fraction`` of all rows.
    * ``stratified`` (per user): every user keeps ``test_fraction`` of its rows in test,
      rounded per user (train = round((1 - test_fraction) x the user's count)).
    * ``item_stratified``: Microsoft Recommenders' benchmark split,
      ``python_stratified_split(data, ratio=0.75, min_rating=1, filter_by="item")`` in their
      ``examples/06_benchmarks/movielens.ipynb`` ("The splitting is stratified based on
      items"): each item's rows in a seeded random order, the i-th (1-based) of n in train
      when i / n <= 1 - test_fraction, as their ``_do_stratification`` ranks them; an item
      with one rating is all test (their rule; the row draws differ from their seed 42).
    * ``kfold``: ``n_folds`` disjoint random folds covering every row (Surprise's KFold).
    * ``temporal``: the latest ``test_fraction`` of rows by timestamp (one global cut).
    * ``leave_last``: each user's latest ``n_last`` rows; users with fewer than
      ``n_last + 1`` rows stay in train.
    * ``cold_users``: a seeded ``cold_fraction`` of users is held out entirely; each reveals
      ``n_reveal`` of its ratings (earliest by timestamp, random without timestamps), marked
      ``REVEALED``; the rest of its ratings are the test set.  Users with no more than
      ``n_reveal`` ratings are left out of the evaluation (their rows stay revealed).
    * ``cold_items``: a seeded ``cold_fraction`` of items is held out entirely; all their
      ratings are the test set, so no train row mentions a cold item.
    """

    method: str = "random"
    test_fraction: float = 0.2
    n_folds: int = 5
    n_last: int = 1
    seed: int = 0
    cold_fraction: float = 0.1
    n_reveal: int = 0
    #: keep only this seeded share of the train rows (test rows unchanged): learning curves
    train_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown split method {self.method!r}; known: {', '.join(METHODS)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise UserError(f"split test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.method == "kfold" and not 2 <= self.n_folds <= 100:
            raise UserError(f"kfold needs 2..100 folds, got {self.n_folds}")
        if self.method == "leave_last" and self.n_last < 1:
            raise UserError(f"leave_last needs n_last >= 1, got {self.n_last}")
        if self.method.startswith("cold_") and not 0.0 < self.cold_fraction < 1.0:
            raise UserError(f"cold_fraction must be in (0, 1), got {self.cold_fraction}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise UserError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.train_fraction < 1.0 and self.method == "kfold":
            raise UserError("train_fraction applies to hold-out splits, not kfold")
        if self.method == "cold_users" and self.n_reveal < 0:
            raise UserError(f"n_reveal must be >= 0, got {self.n_reveal}")

    @classmethod
    def from_dict(cls, d: dict) -> SplitSpec:
        """From a suite's split table or a record's ``split``; options the method does not
        use are validated, then dropped (``to_dict``), so equal protocols compare equal."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(f"unknown split option(s): {', '.join(sorted(unknown))}")
        return cls(**cls(**d).to_dict())

    def to_dict(self) -> dict:
        """Only the fields that matter for this method, so records stay readable."""
        d = {"method": self.method, "seed": self.seed}
        if self.method in ("random", "stratified", "item_stratified", "temporal"):
            d["test_fraction"] = self.test_fraction
        elif self.method == "kfold":
            d["n_folds"] = self.n_folds
        elif self.method == "leave_last":
            d["n_last"] = self.n_last
        else:
            d["cold_fraction"] = self.cold_fraction
            if self.method == "cold_users":
                d["n_reveal"] = self.n_reveal
        if self.train_fraction < 1.0:  # only when set, so existing keys stay unchanged
            d["train_fraction"] = self.train_fraction
        return d

    @property
    def label(self) -> str:
        """Short human name used in tables, e.g. ``stratified 75/25`` or ``5-fold``."""
        base = self._base_label()
        if self.train_fraction < 1.0:
            return f"{base}, {self.train_fraction:.0%} of train"
        return base

    def _base_label(self) -> str:
        pct = round(self.test_fraction * 100)
        match self.method:
            case "kfold":
                return f"{self.n_folds}-fold"
            case "leave_last":
                return f"leave-last-{self.n_last}"
            case "cold_users":
                return f"cold users {round(self.cold_fraction * 100)}%, n={self.n_reveal}"
            case "cold_items":
                return f"cold items {round(self.cold_fraction * 100)}%"
            case "stratified":
                return f"user-stratified {100 - pct}/{pct}"
            case "item_stratified":
                return f"item-stratified {100 - pct}/{pct}"
            case _:
                return f"{self.method} {100 - pct}/{pct}"

    @property
    def folds(self) -> list[int]:
        return list(range(self.n_folds)) if self.method == "kfold" else [0]


def _rows_in_user_order(ratings: Ratings, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (user, key) and each row's 0-based rank within its user."""
    order = np.lexsort((key, ratings.users))
    users_sorted = ratings.users[order]
    starts = np.flatnonzero(np.r_[True, users_sorted[1:] != users_sorted[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order, np.arange(len(order)) - group_start


def assign(ratings: Ratings, spec: SplitSpec) -> np.ndarray:
    """``fold_of_row`` for ``spec`` (int8; -1 = train in every fold)."""
    n = len(ratings)
    rng = np.random.default_rng(spec.seed)
    fold_of_row = np.full(n, TRAIN, dtype=np.int8)
    if n == 0:
        raise UserError("cannot split an empty dataset")
    match spec.method:
        case "random":
            n_test = int(round(n * spec.test_fraction))
            fold_of_row[rng.permutation(n)[:n_test]] = 0
        case "kfold":
            if n < spec.n_folds:
                raise UserError(f"{n} ratings cannot be split into {spec.n_folds} folds")
            # Contiguous chunks of one permutation, the first n % k chunks one row longer
            # (the rule Surprise's KFold uses).
            sizes = np.full(spec.n_folds, n // spec.n_folds)
            sizes[: n % spec.n_folds] += 1
            # Its own stream: from the random hold-out's stream, fold 0 of 5 would be exactly
            # the random 80/20 test set of the same seed, and the two tables one experiment.
            permutation = np.random.default_rng([spec.seed, KFOLD_STREAM]).permutation(n)
            fold_of_row[permutation] = np.repeat(np.arange(spec.n_folds), sizes)
        case "stratified":
            order, rank = _rows_in_user_order(ratings, rng.random(n))
            counts = ratings.user_counts()[ratings.users[order]]
            n_train = np.round(counts * (1.0 - spec.test_fraction)).astype(np.int64)
            fold_of_row[order[rank >= n_train]] = 0
        case "item_stratified":
            key = rng.random(n)
            order = np.lexsort((key, ratings.items))
            items_sorted = ratings.items[order]
            starts = np.flatnonzero(np.r_[True, items_sorted[1:] != items_sorted[:-1]])
            sizes = np.diff(np.r_[starts, n])
            rank = np.arange(1, n + 1) - np.repeat(starts, sizes)  # 1-based within the item
            share = rank / np.repeat(sizes, sizes)
            fold_of_row[order[share > 1.0 - spec.test_fraction]] = 0
        case "temporal" | "leave_last":
            if ratings.timestamps is None:
                raise UserError(f"split {spec.method!r} needs timestamps; this dataset has none")
            if spec.method == "temporal":
                # Latest rows go to test; ties broken by row order so the cut is stable.
                order = np.lexsort((np.arange(n), ratings.timestamps))
                n_test = int(round(n * spec.test_fraction))
                fold_of_row[order[n - n_test :]] = 0
            else:
                order, rank = _rows_in_user_order(ratings, -ratings.timestamps)
                counts = ratings.user_counts()[ratings.users[order]]
                test = (rank < spec.n_last) & (counts > spec.n_last)
                fold_of_row[order[test]] = 0
        case "cold_users":
            cold = rng.random(ratings.n_users) < spec.cold_fraction
            # Reveal order: earliest first when there are timestamps, else a seeded shuffle.
            key = ratings.timestamps if ratings.timestamps is not None else rng.random(n)
            order, rank = _rows_in_user_order(ratings, key)
            counts = ratings.user_counts()[ratings.users[order]]
            held = cold[ratings.users[order]]
            fold_of_row[order[held & (rank < spec.n_reveal)]] = REVEALED
            fold_of_row[order[held & (rank >= spec.n_reveal) & (counts > spec.n_reveal)]] = 0
        case "cold_items":
            cold = rng.random(ratings.n_items) < spec.cold_fraction
            fold_of_row[cold[ratings.items]] = 0
    if spec.train_fraction < 1.0:
        # A separate stream, so the test rows are those of the full-train split.
        train = np.flatnonzero(fold_of_row == TRAIN)
        keep = np.random.default_rng([spec.seed, 1]).random(len(train)) < spec.train_fraction
        fold_of_row[train[~keep]] = UNUSED
    return fold_of_row


def validation_spec(spec: SplitSpec) -> SplitSpec:
    """The protocol used to carve validation rows out of train: same method, derived seed.

    k-fold becomes a random hold-out of one fold's size, so tuning fits once per setting.
    """
    seed = spec.seed + 7919  # a fixed offset: validation never coincides with the test draw
    if spec.method == "kfold":
        return SplitSpec("random", test_fraction=1.0 / spec.n_folds, seed=seed)
    return replace(spec, seed=seed)


@dataclass(frozen=True)
class Fold:
    """Row indices of one fold; ``fingerprint`` identifies the exact test rows.

    ``revealed_rows`` (a subset of ``train_rows``) are the cold users' revealed ratings.
    """

    train_rows: np.ndarray
    test_rows: np.ndarray
    fingerprint: str
    revealed_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def fold_rows(fold_of_row: np.ndarray, fold: int) -> Fold:
    test = fold_of_row == fold
    test_rows = np.flatnonzero(test)
    return Fold(
        np.flatnonzero(~test & (fold_of_row != UNUSED)),
        test_rows,
        hashlib.sha256(test_rows.astype(np.int64).tobytes()).hexdigest()[:16],
        np.flatnonzero(fold_of_row == REVEALED),
    )


def validation_rows(ratings: Ratings, train_rows: np.ndarray, spec: SplitSpec) -> Fold:
    """Split ``train_rows`` into fit / validation rows; test rows are never an input."""
    inner = assign(ratings.take(train_rows), validation_spec(spec))
    f = fold_rows(inner, 0)
    return Fold(train_rows[f.train_rows], train_rows[f.test_rows], f.fingerprint)


def split_key(dataset_fingerprint: str, spec: SplitSpec) -> str:
    blob = json.dumps({"data": dataset_fingerprint, **spec.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def load_or_assign(ratings: Ratings, spec: SplitSpec, store_dir: Path | None) -> np.ndarray:
    """The stored assignment for (dataset, spec), computing and storing it on first use.

    The file carries the checksum of its assignment, and a small ``.sha256`` file beside it
    keeps the same checksum apart.  A file that is unreadable, fails its checksum or belongs
    to other data is rebuilt from the seed (the computation is deterministic); when the
    rebuilt assignment does not match the checksum kept beside it, the split code or the
    data changed under earlier records, and the run stops (``StoreFault``) instead of
    mixing two splits under one name.
    """
    fingerprint = ratings.fingerprint()
    if store_dir is None:
        return assign(ratings, spec)
    key = split_key(fingerprint, spec)
    path = Path(store_dir) / f"{key}.npz"
    kept = Path(store_dir) / f"{key}.sha256"
    try:
        with np.load(path) as z:
            fold_of_row = z["fold_of_row"]
            if (str(z["dataset"]) == fingerprint and len(fold_of_row) == len(ratings)
                    and str(z["checksum"]) == _checksum(fold_of_row)):
                if not _read_text(kept):
                    store.write_atomic(kept, lambda fh: fh.write(str(z["checksum"]).encode()))
                return fold_of_row
    except (FileNotFoundError, KeyError):  # not stored yet, or stored before checksums
        pass
    except Exception as exc:  # noqa: BLE001 - any damage to the file means: rebuild it
        log.warning("split file %s is damaged (%s); rebuilding it from its seed", path,
                    type(exc).__name__)
    fold_of_row = assign(ratings, spec)
    checksum = _checksum(fold_of_row)
    expected = _read_text(kept)
    if expected and expected != checksum:
        raise StoreFault(
            f"split {path.name} rebuilt from its seed does not reproduce the stored split "
            f"(checksum {checksum[:12]} vs {expected[:12]}): the split code or the data changed "
            f"under earlier records; move {path.parent} away to start over"
        )

    def write(fh) -> None:
        np.savez(fh, fold_of_row=fold_of_row, dataset=fingerprint, spec=json.dumps(asdict(spec)),
                 checksum=checksum)

    store.write_atomic(path, write)
    store.write_atomic(kept, lambda fh: fh.write(checksum.encode()))
    return fold_of_row


def _checksum(fold_of_row: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(fold_of_row).tobytes()).hexdigest()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
