"""Adapters for Surprise (scikit-surprise): the eleven algorithms of its README benchmark.

Training is Surprise's own code with Surprise's defaults.  Prediction is ours: ``predict``
and ``score`` recompute Surprise's ``algo.predict(...).est`` from the fitted parameters on
whole arrays (numpy, or numba kernels for the k-NN family and Slope One), with the same
fallbacks for unknown users / items and impossible predictions and the same clipping to
the rating scale, so a catalogue is scored in seconds instead of minutes (Surprise #451).

Id mapping: ``prepare`` builds the ``surprise.Trainset`` exactly as Surprise's
``Dataset.construct_trainset`` would from the same rows (inner ids in order of first
appearance, rating lists in row order).  The fitted model is therefore the one Surprise
itself would fit; raw ids are our int codes, and ``code -> inner id`` arrays (-1 = no
train rows) translate between the two.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import surprise

from bench.adapter import Adapter
from bench.data.model import TrainSet

#: float64 elements per row chunk of ``score``
BLOCK_ELEMENTS = 2**24


@dataclass(frozen=True)
class Interactions:
    """Train rows grouped by user (``ur``) or item (``ir``) in Surprise's list order."""

    indptr: np.ndarray  # int64, per inner id
    others: np.ndarray  # int32 inner id of the other side
    ratings: np.ndarray  # float64


@dataclass(frozen=True)
class PreparedTrainset:
    """What ``prepare`` hands to ``fit_prepared``: the Surprise trainset plus id maps."""

    trainset: surprise.Trainset
    user_inner: np.ndarray  # int32 per user code, -1 when the user has no train rows
    item_inner: np.ndarray  # int32 per item code, -1 when the item has no train rows
    by_user: Interactions  # same order as trainset.ur
    by_item: Interactions  # same order as trainset.ir


def _first_appearance_ids(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner ids numbered by first appearance (as Surprise does) -> (per row, per code)."""
    present, first_row = np.unique(codes, return_index=True)
    order = np.argsort(first_row, kind="stable")
    code_to_inner = np.full(n_codes, -1, dtype=np.int32)
    code_to_inner[present[order]] = np.arange(len(present), dtype=np.int32)
    return code_to_inner[codes], code_to_inner


def _group(
    keys: np.ndarray, others: np.ndarray, ratings: np.ndarray, n_keys: int
) -> tuple[Interactions, list[list[tuple[int, float]]]]:
    """Stable grouping of rows by key: arrays for kernels and Surprise's lists of tuples."""
    order = np.argsort(keys, kind="stable")  # keeps row order inside a group, like Surprise
    indptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=indptr[1:])
    grouped = Interactions(indptr, others[order].astype(np.int32), ratings[order])
    pairs = list(zip(grouped.others.tolist(), grouped.ratings.tolist(), strict=True))
    bounds = indptr.tolist()
    lists = [pairs[bounds[k] : bounds[k + 1]] for k in range(n_keys)]
    return grouped, lists


def build_trainset(train: TrainSet) -> PreparedTrainset:
    """A ``surprise.Trainset`` identical to Surprise's own for the same rows in the same order.

    Raw ids are our int codes, so ``algo.predict(user_code, item_code)`` works as usual.
    """
    r = train.ratings
    u_inner, user_inner = _first_appearance_ids(r.users, r.n_users)
    i_inner, item_inner = _first_appearance_ids(r.items, r.n_items)
    n_users = int((user_inner >= 0).sum())
    n_items = int((item_inner >= 0).sum())
    # float() of each float32 rating, as Surprise's readers store Python floats
    values = r.ratings.astype(np.float64)
    by_user, ur_lists = _group(u_inner, i_inner, values, n_users)
    by_item, ir_lists = _group(i_inner, u_inner, values, n_items)
    ur = defaultdict(list, enumerate(ur_lists))
    ir = defaultdict(list, enumerate(ir_lists))
    known_users = np.flatnonzero(user_inner >= 0)
    known_items = np.flatnonzero(item_inner >= 0)
    raw2inner_users = dict(zip(known_users.tolist(), user_inner[known_users].tolist(), strict=True))
    raw2inner_items = dict(zip(known_items.tolist(), item_inner[known_items].tolist(), strict=True))
    lo, hi = train.rating_scale
    trainset = surprise.Trainset(
        ur,
        ir,
        n_users,
        n_items,
        len(r),
        (float(lo), float(hi)),
        raw2inner_users,
        raw2inner_items,
    )
    return PreparedTrainset(trainset, user_inner, item_inner, by_user, by_item)


def inner_ids(code_to_inner: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Inner ids for codes; -1 for codes without train rows or outside the catalogue."""
    codes = np.asarray(codes, dtype=np.int64)
    inner = np.full(codes.shape, -1, dtype=np.int32)
    inside = (codes >= 0) & (codes < len(code_to_inner))
    inner[inside] = code_to_inner[codes[inside]]
    return inner


def by_code(values: np.ndarray, code_to_inner: np.ndarray) -> np.ndarray:
    """Re-index per-inner-id parameters by code; codes without train rows get zeros."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((len(code_to_inner),) + values.shape[1:], dtype=np.float64)
    known = code_to_inner >= 0
    out[known] = values[code_to_inner[known]]
    return out


class SurpriseAdapter(Adapter):
    """Shared plumbing: build the trainset, fit the Surprise algorithm, clip, cast."""

    library: ClassVar[str] = "scikit-surprise"
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True
    scored_by_harness: ClassVar[bool] = True  # vectorised estimate_pairs, not algo.predict

    #: For seeded algorithms whose keyword arguments are exactly this adapter's own
    #: parameters (minus the harness's): the Surprise class, built by ``make_algo``.
    algo_class: ClassVar[type | None] = None

    def make_algo(self) -> surprise.AlgoBase:
        if self.algo_class is None:
            raise NotImplementedError
        return self.algo_class(**self.library_params("clip"), random_state=self.seed)

    def prepare(self, train: TrainSet) -> PreparedTrainset:
        return build_trainset(train)

    def fit_prepared(self, prepared: PreparedTrainset) -> SurpriseAdapter:
        self.prepared_ = prepared
        self.algo_ = self.make_algo().fit(prepared.trainset)
        self.global_mean_ = float(prepared.trainset.global_mean)
        self.rating_scale_ = prepared.trainset.rating_scale
        self.index_fitted()
        return self

    def index_fitted(self) -> None:
        """Lay the fitted parameters out for vectorised prediction (after ``algo_.fit``)."""

    # -- estimates, before clipping --------------------------------------------------------
    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """float64 estimates for (user code, item code) pairs, unknown ones handled."""
        raise NotImplementedError

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        """float64 (len(users), n_items) estimates; default: every pair via estimate_pairs."""
        n_items = self.n_items_
        u = np.repeat(users, n_items)
        i = np.tile(np.arange(n_items, dtype=np.int32), len(users))
        return self.estimate_pairs(u, i).reshape(len(users), n_items)

    # -- contract ------------------------------------------------------------------------
    def finish(self, est: np.ndarray) -> np.ndarray:
        if self.clip:  # what algo.predict(clip=True) does
            lo, hi = self.rating_scale_
            est = np.clip(est, lo, hi)
        return est.astype(np.float32)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return self.finish(self.estimate_pairs(users, items))

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        out = np.empty((len(users), self.n_items_), dtype=np.float32)
        # row chunks keep the float64 temporaries of estimate_block bounded (~128 MB each)
        step = max(1, BLOCK_ELEMENTS // max(self.n_items_, 1))
        for lo in range(0, len(users), step):
            out[lo : lo + step] = self.finish(self.estimate_block(users[lo : lo + step]))
        return out
