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
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import surprise

from bench.adapter import Adapter
from bench.data.model import TrainSet
from bench.execution.admission import DataShape
from bench.kernels.neighbours import (
    TASKS_PER_THREAD,
    knn_aggregate,
    knn_scatter,
    slope_one_pairs,
)
from bench.kernels.pair_random import pair_normal

#: pairs per chunk when gathering factor rows for ``predict``
PAIR_CHUNK = 65_536
#: float64 elements per row chunk of ``score``
BLOCK_ELEMENTS = 2**24

#: (base_x, base_y, off_x, off_y, div_x, scale_x) of a k-NN variant, see KNNAdapter
Normalisation = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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


def _lookup(code_to_inner: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Inner ids for codes; -1 for codes without train rows or outside the catalogue."""
    codes = np.asarray(codes, dtype=np.int64)
    inner = np.full(codes.shape, -1, dtype=np.int32)
    inside = (codes >= 0) & (codes < len(code_to_inner))
    inner[inside] = code_to_inner[codes[inside]]
    return inner


def _by_code(values: np.ndarray, code_to_inner: np.ndarray) -> np.ndarray:
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


# --------------------------------------------------------------------------------------
# Factor and bias models: catalogue-indexed parameters, zeros for codes without train rows,
# which reproduces Surprise's "add the terms of whatever is known" rule directly.
# --------------------------------------------------------------------------------------


class FactorModel(SurpriseAdapter):
    """mu + b_u + b_i + p_u.q_i with Surprise's rules for unknown users / items."""

    def is_biased(self) -> bool:
        """False for unbiased SVD / NMF: Surprise then has no estimate unless both are known."""
        return True

    def user_factors(self) -> np.ndarray:
        return self.algo_.pu

    def index_fitted(self) -> None:
        p = self.prepared_
        self.user_known_ = p.user_inner >= 0
        self.item_known_ = p.item_inner >= 0
        self.bu_ = _by_code(self.algo_.bu, p.user_inner)
        self.bi_ = _by_code(self.algo_.bi, p.item_inner)
        self.pu_ = _by_code(self.user_factors(), p.user_inner)
        self.qi_ = _by_code(self.algo_.qi, p.item_inner)

    def _known(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uk = (users >= 0) & (users < len(self.user_known_))
        ik = (items >= 0) & (items < len(self.item_known_))
        uk[uk] = self.user_known_[users[uk]]
        ik[ik] = self.item_known_[items[ik]]
        return uk, ik

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uk, ik = self._known(users, items)
        u = np.where(uk, users, 0)
        i = np.where(ik, items, 0)
        both = uk & ik
        dot = np.zeros(len(u))
        for lo in range(0, len(u), PAIR_CHUNK):  # bounded (chunk x n_factors) temporaries
            part = slice(lo, lo + PAIR_CHUNK)
            dot[part] = np.einsum("nf,nf->n", self.pu_[u[part]], self.qi_[i[part]])
        dot = np.where(both, dot, 0.0)
        if self.is_biased():
            # Surprise adds only the terms of what is known
            bu = np.where(uk, self.bu_[u], 0.0)
            bi = np.where(ik, self.bi_[i], 0.0)
            return self.global_mean_ + bu + bi + dot
        return np.where(both, dot, self.global_mean_)  # PredictionImpossible -> global mean

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        uk, _ = self._known(users, np.zeros_like(users))
        u = np.where(uk, users, 0)
        pu = np.where(uk[:, None], self.pu_[u], 0.0)
        dot = pu @ self.qi_.T  # unknown rows / columns are zero vectors: no dot term
        if self.is_biased():
            bu = np.where(uk, self.bu_[u], 0.0)
            return self.global_mean_ + bu[:, None] + self.bi_[None, :] + dot
        both = uk[:, None] & self.item_known_[None, :]
        return np.where(both, dot, self.global_mean_)


class SVD(FactorModel):
    """Surprise SVD (Funk-style SGD matrix factorisation with biases)."""

    name: ClassVar[str] = "surprise.SVD"
    algo_class: ClassVar[type | None] = surprise.SVD
    scores_cold_users: ClassVar[bool] = True  # mu + b_i when biased (the default)
    search_space: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [50, 100, 200],
        "n_epochs": [20, 40],
        "lr_all": [0.005, 0.01],
        "reg_all": [0.02, 0.05, 0.1],
    }

    def __init__(
        self,
        n_factors: int = 100,
        n_epochs: int = 20,
        biased: bool = True,
        init_mean: float = 0.0,
        init_std_dev: float = 0.1,
        lr_all: float = 0.005,
        reg_all: float = 0.02,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.clip = clip

    def is_biased(self) -> bool:
        return bool(self.biased)


class SVDpp(FactorModel):
    """Surprise SVD++: SVD plus the implicit feedback term |I_u|^-1/2 sum_{j in I_u} y_j."""

    name: ClassVar[str] = "surprise.SVDpp"
    algo_class: ClassVar[type | None] = surprise.SVDpp
    scores_cold_users: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [10, 20, 50],
        "lr_all": [0.005, 0.007],
        "reg_all": [0.02, 0.05],
    }

    def __init__(
        self,
        n_factors: int = 20,
        n_epochs: int = 20,
        init_mean: float = 0.0,
        init_std_dev: float = 0.1,
        lr_all: float = 0.007,
        reg_all: float = 0.02,
        cache_ratings: bool = False,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.cache_ratings = cache_ratings
        self.clip = clip

    def user_factors(self) -> np.ndarray:
        # p_u + |I_u|^-1/2 sum_j y_j, with j repeated as often as it is in ur[u]
        by_user = self.prepared_.by_user
        n_users = len(by_user.indptr) - 1
        counts = np.diff(by_user.indptr)
        rows = np.repeat(np.arange(n_users), counts)
        rated = sp.csr_matrix(
            (np.ones(len(rows)), (rows, by_user.others)),
            shape=(n_users, self.algo_.qi.shape[0]),
        )
        implicit = (rated @ self.algo_.yj) / np.sqrt(counts)[:, None]
        return self.algo_.pu + implicit


class NMF(FactorModel):
    """Surprise NMF (non-negative factors by multiplicative updates)."""

    name: ClassVar[str] = "surprise.NMF"
    algo_class: ClassVar[type | None] = surprise.NMF
    search_space: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [10, 15, 30],
        "n_epochs": [50, 100],
        "reg_pu": [0.06, 0.1],
        "reg_qi": [0.06, 0.1],
    }

    def __init__(
        self,
        n_factors: int = 15,
        n_epochs: int = 50,
        biased: bool = False,
        reg_pu: float = 0.06,
        reg_qi: float = 0.06,
        reg_bu: float = 0.02,
        reg_bi: float = 0.02,
        lr_bu: float = 0.005,
        lr_bi: float = 0.005,
        init_low: float = 0.0,
        init_high: float = 1.0,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.reg_pu = reg_pu
        self.reg_qi = reg_qi
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.init_low = init_low
        self.init_high = init_high
        self.clip = clip

    def is_biased(self) -> bool:
        return bool(self.biased)


class _BaselineOptions:
    """The ``bsl_*`` parameters of Surprise's baseline estimates, read in one place."""

    bsl_method: str
    bsl_n_epochs: int | None
    bsl_reg_u: float
    bsl_reg_i: float
    bsl_reg: float
    bsl_learning_rate: float

    def bsl_options(self) -> dict[str, Any]:
        """Surprise's ``bsl_options`` dict; ``bsl_n_epochs=None`` keeps its per-method default."""
        if self.bsl_method == "als":
            options: dict[str, Any] = {
                "method": "als", "reg_u": self.bsl_reg_u, "reg_i": self.bsl_reg_i
            }
        else:
            options = {
                "method": self.bsl_method,
                "reg": self.bsl_reg,
                "learning_rate": self.bsl_learning_rate,
            }
        if self.bsl_n_epochs is not None:
            options["n_epochs"] = self.bsl_n_epochs
        return options


class BaselineOnly(_BaselineOptions, SurpriseAdapter):
    """Surprise BaselineOnly: mu + b_u + b_i (ALS or SGD)."""

    name: ClassVar[str] = "surprise.BaselineOnly"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    scores_cold_users: ClassVar[bool] = True  # mu + b_i
    search_space: ClassVar[dict[str, list[Any]]] = {
        "bsl_reg_u": [5.0, 15.0, 25.0],
        "bsl_reg_i": [5.0, 10.0, 20.0],
    }

    def __init__(
        self,
        bsl_method: str = "als",
        bsl_n_epochs: int | None = None,
        bsl_reg_u: float = 15.0,
        bsl_reg_i: float = 10.0,
        bsl_reg: float = 0.02,
        bsl_learning_rate: float = 0.005,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.bsl_method = bsl_method
        self.bsl_n_epochs = bsl_n_epochs
        self.bsl_reg_u = bsl_reg_u
        self.bsl_reg_i = bsl_reg_i
        self.bsl_reg = bsl_reg
        self.bsl_learning_rate = bsl_learning_rate
        self.clip = clip

    def make_algo(self) -> surprise.AlgoBase:
        return surprise.BaselineOnly(bsl_options=self.bsl_options(), verbose=False)

    def index_fitted(self) -> None:
        p = self.prepared_
        self.bu_ = _by_code(self.algo_.bu, p.user_inner)  # zero for unknown users
        self.bi_ = _by_code(self.algo_.bi, p.item_inner)

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = _lookup(self.prepared_.user_inner, users)
        i = _lookup(self.prepared_.item_inner, items)
        bu = np.where(u >= 0, self.bu_[np.where(u >= 0, users, 0)], 0.0)
        bi = np.where(i >= 0, self.bi_[np.where(i >= 0, items, 0)], 0.0)
        return self.global_mean_ + bu + bi

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        u = _lookup(self.prepared_.user_inner, users)
        bu = np.where(u >= 0, self.bu_[np.where(u >= 0, users, 0)], 0.0)
        return self.global_mean_ + bu[:, None] + self.bi_[None, :]


class CoClustering(SurpriseAdapter):
    """Surprise CoClustering: co-cluster mean plus user and item offsets from their clusters.

    Surprise 1.1.5 declares ratings ``cdef int`` while fitting, so half-star ratings are
    truncated (all-4.5 data predicts 4.0); we reproduce Surprise, quirk included.
    """

    name: ClassVar[str] = "surprise.CoClustering"
    algo_class: ClassVar[type | None] = surprise.CoClustering
    search_space: ClassVar[dict[str, list[Any]]] = {
        "n_cltr_u": [3, 5, 10],
        "n_cltr_i": [3, 5, 10],
    }

    def __init__(
        self,
        n_cltr_u: int = 3,
        n_cltr_i: int = 3,
        n_epochs: int = 20,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.n_cltr_u = n_cltr_u
        self.n_cltr_i = n_cltr_i
        self.n_epochs = n_epochs
        self.clip = clip

    def index_fitted(self) -> None:
        a = self.algo_
        self.cluster_u_ = np.asarray(a.cltr_u, dtype=np.int64)
        self.cluster_i_ = np.asarray(a.cltr_i, dtype=np.int64)
        self.user_offset_ = a.user_mean - a.avg_cltr_u[self.cluster_u_]
        self.item_offset_ = a.item_mean - a.avg_cltr_i[self.cluster_i_]

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = _lookup(self.prepared_.user_inner, users)
        i = _lookup(self.prepared_.item_inner, items)
        both = (u >= 0) & (i >= 0)
        uu, ii = u[both], i[both]
        est = np.full(len(u), self.global_mean_)  # unknown user or item: global mean
        est[both] = (
            self.algo_.avg_cocltr[self.cluster_u_[uu], self.cluster_i_[ii]]
            + self.user_offset_[uu]
            + self.item_offset_[ii]
        )
        return est

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        u = _lookup(self.prepared_.user_inner, users)
        i = self.prepared_.item_inner
        uu = np.maximum(u, 0)
        ii = np.maximum(i, 0)
        est = (
            self.algo_.avg_cocltr[self.cluster_u_[uu][:, None], self.cluster_i_[ii][None, :]]
            + self.user_offset_[uu][:, None]
            + self.item_offset_[ii][None, :]
        )
        both = (u >= 0)[:, None] & (i >= 0)[None, :]
        return np.where(both, est, self.global_mean_)


class NormalPredictor(SurpriseAdapter):
    """Surprise NormalPredictor: a draw from N(mu, sigma) fitted on train, clipped.

    Surprise draws from numpy's global generator, which no seed controls; here each
    (user, item) pair gets a seeded draw keyed by the pair, so ``predict`` and ``score``
    agree and results do not depend on batching.  Same distribution, different numbers.
    """

    name: ClassVar[str] = "surprise.NormalPredictor"
    search_space: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, clip: bool = True, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)
        self.clip = clip

    def make_algo(self) -> surprise.AlgoBase:
        return surprise.NormalPredictor()

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.global_mean_ + self.algo_.sigma * pair_normal(self.seed, users, items)


class SlopeOne(SurpriseAdapter):
    """Surprise SlopeOne: user mean plus the mean deviation to the related rated items.

    Surprise 1.1.5 computes ``dev`` from ratings cast to ``int`` (half stars truncated);
    the user means use the true ratings.  We reproduce Surprise, quirk included.
    """

    name: ClassVar[str] = "surprise.SlopeOne"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    search_space: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, clip: bool = True, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)
        self.clip = clip

    def make_algo(self) -> surprise.AlgoBase:
        return surprise.SlopeOne()

    def estimate_bytes(self, shape: DataShape) -> int:
        # Surprise's freq and dev (items x items, 8 bytes each), then our dev_ and related_
        return (8 + 8 + 8 + 1) * shape.n_items * shape.n_items

    def index_fitted(self) -> None:
        a = self.algo_
        # Surprise only averages dev[i, j] over items j with freq[i, j] > 0
        self.related_ = a.freq > 0
        self.dev_ = np.where(self.related_, a.dev, 0.0)
        self.user_mean_ = np.asarray(a.user_mean, dtype=np.float64)
        by_user = self.prepared_.by_user
        n_users = len(by_user.indptr) - 1
        rows = np.repeat(np.arange(n_users), np.diff(by_user.indptr))
        n_items = self.dev_.shape[0]
        # rating counts (duplicates counted twice, as Surprise's list would)
        self.rated_ = sp.csr_matrix(
            (np.ones(len(rows)), (rows, by_user.others)), shape=(n_users, n_items)
        )
        self.related_f_ = self.related_.astype(np.float64)

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = _lookup(self.prepared_.user_inner, users)
        i = _lookup(self.prepared_.item_inner, items)
        both = (u >= 0) & (i >= 0)
        est = np.full(len(u), self.global_mean_)
        by_user = self.prepared_.by_user
        total, count = slope_one_pairs(
            u[both].astype(np.int32),
            i[both].astype(np.int32),
            by_user.indptr,
            by_user.others,
            self.dev_,
            self.related_,
            self.threads * TASKS_PER_THREAD,
        )
        mean_dev = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        est[both] = self.user_mean_[u[both]] + mean_dev
        return est

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        # matrix form: sums and counts over related rated items for every catalogue item
        u = _lookup(self.prepared_.user_inner, users)
        rated = self.rated_[np.maximum(u, 0)]
        total = np.asarray(rated @ self.dev_.T)
        count = np.asarray(rated @ self.related_f_.T)
        mean_dev = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        inner_est = self.user_mean_[np.maximum(u, 0)][:, None] + mean_dev
        i = self.prepared_.item_inner
        est = np.full((len(u), self.n_items_), self.global_mean_)
        known_items = i >= 0
        est[:, known_items] = inner_est[:, i[known_items]]
        est[u < 0] = self.global_mean_
        return est


# --------------------------------------------------------------------------------------
# k-NN family: one numba kernel (bench.kernels.neighbours.knn_aggregate) for all four.
# Estimate = base_x[x] + base_y[y] + scale_x[x] * sum(sim * res) / sum(sim), where each
# neighbour's residual res = (r - off_x[x2] - off_y[y]) / div_x[x2] is precomputed per
# rating in Surprise's list order.
# --------------------------------------------------------------------------------------


#: n x n float64 arrays Surprise's similarity code keeps alive at once, per measure
#: (cosine: prods, freq, sqi, sqj, sim; msd: sq_diff, freq, sim; pearson: freq, prods,
#: sqi, sqj, si, sj, sim; pearson_baseline: freq, prods, sq_diff_i, sq_diff_j, sim)
SIMILARITY_ARRAYS = {"cosine": 5, "msd": 3, "pearson": 7, "pearson_baseline": 5}


class KNNAdapter(SurpriseAdapter):
    """Shared k-NN plumbing; subclasses say how to normalise ratings."""
    stochastic: ClassVar[bool] = False  # exact neighbourhoods: nothing random

    algo_class: ClassVar[type] = surprise.KNNBasic
    #: KNNBasic has no estimate without neighbours (global mean); the others keep the base
    impossible_without_neighbours: ClassVar[bool] = False
    search_space: ClassVar[dict[str, list[Any]]] = {
        "k": [20, 40, 80],
        "sim_name": ["msd", "cosine", "pearson_baseline"],
        "user_based": [True, False],
    }

    def __init__(
        self,
        k: int = 40,
        min_k: int = 1,
        sim_name: str = "msd",
        user_based: bool = True,
        min_support: int = 1,
        shrinkage: float = 100.0,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.k = k
        self.min_k = min_k
        self.sim_name = sim_name
        self.user_based = user_based
        self.min_support = min_support
        self.shrinkage = shrinkage
        self.clip = clip

    def sim_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "name": self.sim_name,
            "user_based": bool(self.user_based),
            "min_support": self.min_support,
        }
        if self.sim_name == "pearson_baseline":
            options["shrinkage"] = self.shrinkage
        return options

    def algo_kwargs(self) -> dict[str, Any]:
        return {}

    def estimate_bytes(self, shape: DataShape) -> int:
        # Surprise's similarities.pyx holds these n x n float64 arrays at once (sim included)
        n = shape.n_users if self.user_based else shape.n_items
        return SIMILARITY_ARRAYS.get(self.sim_name, 7) * n * n * 8

    def make_algo(self) -> surprise.AlgoBase:
        return self.algo_class(
            k=self.k,
            min_k=self.min_k,
            sim_options=self.sim_options(),
            verbose=False,
            **self.algo_kwargs(),
        )

    def normalisation(self, n_x: int, n_y: int) -> Normalisation:
        """(base_x, base_y, off_x, off_y, div_x, scale_x) for this variant."""
        zeros_x, zeros_y, ones_x = np.zeros(n_x), np.zeros(n_y), np.ones(n_x)
        return zeros_x, zeros_y, zeros_x, zeros_y, ones_x, ones_x

    def index_fitted(self) -> None:
        p = self.prepared_
        # x: entity whose neighbours vote; y: the other side; yr[y]: who rated y
        xr, yr = (p.by_user, p.by_item) if self.user_based else (p.by_item, p.by_user)
        n_x, n_y = len(xr.indptr) - 1, len(yr.indptr) - 1
        base_x, base_y, off_x, off_y, div_x, scale_x = self.normalisation(n_x, n_y)
        # the same residual per rating, laid out in both list orders
        y_of = np.repeat(np.arange(n_y), np.diff(yr.indptr))
        x_of = np.repeat(np.arange(n_x), np.diff(xr.indptr))
        self.yr_residuals_ = (yr.ratings - (off_x[yr.others] + off_y[y_of])) / div_x[yr.others]
        self.xr_residuals_ = (xr.ratings - (off_x[x_of] + off_y[xr.others])) / div_x[x_of]
        self.xr_, self.yr_ = xr, yr
        self.base_x_, self.base_y_, self.scale_x_ = base_x, base_y, scale_x
        self.sim_ = np.ascontiguousarray(self.algo_.sim, dtype=np.float64)

    def cold_estimate(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Estimate when the user or the item is unknown (Surprise: global mean).

        ``u`` and ``i`` broadcast against each other (pairs, or a column and a row)."""
        return np.full(np.broadcast_shapes(u.shape, i.shape), self.global_mean_)

    def combine(
        self, x: np.ndarray, y: np.ndarray, mean: np.ndarray, actual_k: np.ndarray
    ) -> np.ndarray:
        """Surprise's estimate for known (x, y) from the kernels' neighbour aggregate."""
        enough = (actual_k >= self.min_k) & (actual_k > 0)
        if self.impossible_without_neighbours:  # PredictionImpossible -> global mean
            return np.where(enough, mean, self.global_mean_)
        base = self.base_x_[x] + self.base_y_[y]
        return base + np.where(enough, mean * self.scale_x_[x], 0.0)

    def estimate_inner(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Estimates for (inner user, inner item) pairs, -1 meaning unknown."""
        both = (u >= 0) & (i >= 0)
        est = self.cold_estimate(u, i)
        x, y = (u[both], i[both]) if self.user_based else (i[both], u[both])
        # x-major order keeps one row of sim in cache across consecutive pairs
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        mean, actual_k = knn_aggregate(
            x.astype(np.int32),
            y.astype(np.int32),
            self.sim_,
            self.yr_.indptr,
            self.yr_.others,
            self.yr_residuals_,
            int(self.k),
            self.threads * TASKS_PER_THREAD,
        )
        known = np.empty(len(x), dtype=np.float64)
        known[order] = self.combine(x, y, mean, actual_k)
        est[both] = known
        return est

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = _lookup(self.prepared_.user_inner, users)
        i = _lookup(self.prepared_.item_inner, items)
        return self.estimate_inner(u, i)

    def scatter(
        self, xs: np.ndarray, column_of_y: np.ndarray, n_columns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mean, actual_k) for rows xs over the y columns (see ``knn_scatter``)."""
        return knn_scatter(
            xs.astype(np.int32),  # one dtype per argument: one numba compilation
            column_of_y.astype(np.int64),
            n_columns,
            self.sim_,
            self.xr_.indptr,
            self.xr_.others,
            self.xr_residuals_,
            self.yr_.indptr,
            self.yr_.others,
            self.yr_residuals_,
            int(self.k),
        )

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        p = self.prepared_
        u = _lookup(p.user_inner, users)
        i = p.item_inner
        n_users_inner, n_items_inner = p.trainset.n_users, p.trainset.n_items
        known_rows = np.flatnonzero(u >= 0)
        batch = np.unique(u[known_rows])
        if not self.user_based and len(batch) * 5 < n_users_inner:
            # a small batch: per-pair selection beats walking every item's neighbours
            n_items = len(i)
            return self.estimate_inner(np.repeat(u, n_items), np.tile(i, len(u))).reshape(
                len(u), n_items
            )
        # inner block over (batch users x inner items), then spread to the catalogue;
        # x / y index arrays broadcast as a column and a row instead of being repeated
        if self.user_based:
            mean, actual_k = self.scatter(batch, np.arange(n_items_inner), n_items_inner)
            x, y = batch[:, None], np.arange(n_items_inner)[None, :]
        else:
            column_of_user = np.full(n_users_inner, -1, dtype=np.int64)
            column_of_user[batch] = np.arange(len(batch))
            mean, actual_k = self.scatter(np.arange(n_items_inner), column_of_user, len(batch))
            mean, actual_k = mean.T, actual_k.T
            x, y = np.arange(n_items_inner)[None, :], batch[:, None]
        inner = self.combine(x, y, mean, actual_k)
        # cold rows / columns: Surprise's rule for unknown users or items
        est = self.cold_estimate(u[:, None], i[None, :])
        rows = np.searchsorted(batch, u[known_rows])
        known_items = np.flatnonzero(i >= 0)
        est[np.ix_(known_rows, known_items)] = inner[np.ix_(rows, i[known_items])]
        return est


class KNNBasic(KNNAdapter):
    """Surprise KNNBasic: similarity-weighted mean of the neighbours' ratings."""

    name: ClassVar[str] = "surprise.KNNBasic"
    algo_class: ClassVar[type] = surprise.KNNBasic
    impossible_without_neighbours: ClassVar[bool] = True


class KNNWithMeans(KNNAdapter):
    """Surprise KNNWithMeans: mean of x plus weighted mean of neighbours' centred ratings."""

    name: ClassVar[str] = "surprise.KNNWithMeans"
    algo_class: ClassVar[type] = surprise.KNNWithMeans

    def normalisation(self, n_x: int, n_y: int) -> Normalisation:
        means = np.asarray(self.algo_.means, dtype=np.float64)
        zeros_y = np.zeros(n_y)
        return means, zeros_y, means, zeros_y, np.ones(n_x), np.ones(n_x)


class KNNWithZScore(KNNAdapter):
    """Surprise KNNWithZScore: like KNNWithMeans on z-scores, rescaled by sigma of x."""

    name: ClassVar[str] = "surprise.KNNWithZScore"
    algo_class: ClassVar[type] = surprise.KNNWithZScore

    def normalisation(self, n_x: int, n_y: int) -> Normalisation:
        means = np.asarray(self.algo_.means, dtype=np.float64)
        sigmas = np.asarray(self.algo_.sigmas, dtype=np.float64)
        zeros_y = np.zeros(n_y)
        return means, zeros_y, means, zeros_y, sigmas, sigmas


class KNNBaseline(_BaselineOptions, KNNAdapter):
    """Surprise KNNBaseline: baseline b_ui plus weighted mean of neighbours' residuals."""

    name: ClassVar[str] = "surprise.KNNBaseline"
    algo_class: ClassVar[type] = surprise.KNNBaseline
    scores_cold_users: ClassVar[bool] = True  # mu + b_i

    def __init__(
        self,
        k: int = 40,
        min_k: int = 1,
        sim_name: str = "msd",
        user_based: bool = True,
        min_support: int = 1,
        shrinkage: float = 100.0,
        bsl_method: str = "als",
        bsl_n_epochs: int | None = None,
        bsl_reg_u: float = 15.0,
        bsl_reg_i: float = 10.0,
        bsl_reg: float = 0.02,
        bsl_learning_rate: float = 0.005,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(
            k=k,
            min_k=min_k,
            sim_name=sim_name,
            user_based=user_based,
            min_support=min_support,
            shrinkage=shrinkage,
            clip=clip,
            seed=seed,
            threads=threads,
        )
        self.bsl_method = bsl_method
        self.bsl_n_epochs = bsl_n_epochs
        self.bsl_reg_u = bsl_reg_u
        self.bsl_reg_i = bsl_reg_i
        self.bsl_reg = bsl_reg
        self.bsl_learning_rate = bsl_learning_rate

    def algo_kwargs(self) -> dict[str, Any]:
        return {"bsl_options": self.bsl_options()}

    def normalisation(self, n_x: int, n_y: int) -> Normalisation:
        mu = self.global_mean_
        bx = mu + np.asarray(self.algo_.bx, dtype=np.float64)  # Surprise: mu + bx[x2] + by[y]
        by = np.asarray(self.algo_.by, dtype=np.float64)
        return bx, by, bx, by, np.ones(n_x), np.ones(n_x)

    def cold_estimate(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        # Surprise adds whichever of b_u, b_i is known and skips the neighbours
        bu = np.where(u >= 0, self.algo_.bu[np.maximum(u, 0)], 0.0)
        bi = np.where(i >= 0, self.algo_.bi[np.maximum(i, 0)], 0.0)
        return self.global_mean_ + bu + bi
