"""Typed data model shared by every stage: ratings as columnar arrays plus side features.

Users and items are dense int32 codes (0..n-1) assigned once per dataset, so every split,
adapter and metric agrees on what row / column ``u`` / ``i`` means.  Raw ids live only in
``Dataset.user_ids`` / ``Dataset.item_ids`` (code -> raw id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from bench.data.feedback import FeedbackPolicy

#: What ``Ratings.ratings`` hold in a dataset:
#:
#: * ``"rating"``: explicit ratings on ``Dataset.rating_scale`` (MovieLens stars);
#: * ``"presence"``: implicit-only data (plays, clicks, purchases without a value): every row
#:   is one interaction and its value is 1.0;
#: * ``"count"``: implicit-only data with a count per (user, item) (plays, clicks): the value
#:   is the count (> 0).  ``bench.data.feedback`` turns counts into interactions / confidences.
#:
#: Implicit-only data has no ratings to predict: RMSE / MAE and rating-prediction models do
#: not apply, and every test row is relevant (see ``bench.evaluation.evaluate.for_implicit_data``).
ValueKind = Literal["rating", "presence", "count"]
VALUE_KINDS: tuple[str, ...] = ("rating", "presence", "count")


@dataclass(frozen=True)
class Ratings:
    """A set of (user, item, rating[, timestamp]) rows over a fixed catalogue."""

    users: np.ndarray  # int32 codes
    items: np.ndarray  # int32 codes
    ratings: np.ndarray  # float32
    timestamps: np.ndarray | None  # int64 seconds, or None when the dataset has none
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        n = len(self.users)
        if len(self.items) != n or len(self.ratings) != n:
            raise ValueError("users, items and ratings must have the same length")
        if self.timestamps is not None and len(self.timestamps) != n:
            raise ValueError("timestamps must have the same length as ratings")

    def __len__(self) -> int:
        return len(self.users)

    def take(self, index: np.ndarray) -> Ratings:
        """Rows selected by an integer index or boolean mask; the catalogue is unchanged."""
        ts = None if self.timestamps is None else self.timestamps[index]
        return Ratings(
            self.users[index],
            self.items[index],
            self.ratings[index],
            ts,
            self.n_users,
            self.n_items,
        )

    def to_csr(self, values: np.ndarray | None = None, dtype: type = np.float32) -> sp.csr_matrix:
        """User x item matrix over the whole catalogue (``values`` default: the ratings)."""
        data = self.ratings if values is None else values
        m = sp.csr_matrix(
            (data.astype(dtype, copy=False), (self.users, self.items)),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        m.sort_indices()
        return m

    def interactions(self, policy: FeedbackPolicy | None = None) -> sp.csr_matrix:
        """User x item float32 CSR of interactions under ``policy`` (default: every row is 1);
        see ``bench.data.feedback`` for the policies."""
        policy = policy or FeedbackPolicy()
        return policy.matrix(self.users, self.items, self.ratings, (self.n_users, self.n_items))

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)

    def pair_keys(self) -> np.ndarray:
        """One int64 per row identifying the (user, item) pair; used for leakage checks."""
        return self.users.astype(np.int64) * self.n_items + self.items

    def fingerprint(self) -> str:
        """sha256 of the arrays: equal fingerprints mean byte-identical rows."""
        h = hashlib.sha256()
        h.update(np.array([self.n_users, self.n_items], dtype=np.int64).tobytes())
        for a in (self.users, self.items, self.ratings, self.timestamps):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class Features:
    """Side features of users or items: a sparse (n_entities x n_features) matrix."""

    matrix: sp.csr_matrix  # float32
    names: tuple[str, ...]  # one name per column, e.g. "genre=Comedy", "age=25-34"

    @property
    def n_features(self) -> int:
        return self.matrix.shape[1]


class _Catalogue:
    """``n_users`` / ``n_items`` of a container whose ``ratings`` span the catalogue."""

    ratings: Ratings

    @property
    def n_users(self) -> int:
        return self.ratings.n_users

    @property
    def n_items(self) -> int:
        return self.ratings.n_items


@dataclass(frozen=True)
class Dataset(_Catalogue):
    """A loaded dataset: every rating of the catalogue plus id maps and side features."""

    name: str
    ratings: Ratings
    user_ids: np.ndarray  # code -> raw user id
    item_ids: np.ndarray  # code -> raw item id
    rating_scale: tuple[float, float]
    item_features: Features | None = None
    user_features: Features | None = None
    item_titles: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    #: what the ratings hold (see ``ValueKind``); ``rating_scale`` is 0..max for implicit data
    value_kind: ValueKind = "rating"

    def __post_init__(self) -> None:
        if self.value_kind not in VALUE_KINDS:
            raise ValueError(f"value_kind must be one of {VALUE_KINDS}, got {self.value_kind!r}")

    @property
    def implicit(self) -> bool:
        """True for implicit-only data (interactions or counts, no explicit ratings)."""
        return self.value_kind != "rating"

    def fingerprint(self) -> str:
        return self.ratings.fingerprint()


@dataclass(frozen=True)
class TrainSet(_Catalogue):
    """What an adapter may see when fitting: train rows and side features, never test rows."""

    ratings: Ratings
    rating_scale: tuple[float, float]
    item_features: Features | None = None
    user_features: Features | None = None

    def interactions(self, policy: FeedbackPolicy | None = None) -> sp.csr_matrix:
        """The train rows as a user x item interaction matrix (``Ratings.interactions``)."""
        return self.ratings.interactions(policy)

    @property
    def global_mean(self) -> float:
        return float(self.ratings.ratings.mean()) if len(self.ratings) else 0.0
