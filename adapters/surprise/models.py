"""Surprise's rating models apart from k-NN: SVD, SVD++, NMF (factor models with Surprise's
rules for unknown users / items), BaselineOnly, CoClustering, NormalPredictor, SlopeOne.

Factor and bias models keep catalogue-indexed parameters, zeros for codes without train
rows, which reproduces Surprise's "add the terms of whatever is known" rule directly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import surprise

from bench.execution.admission import DataShape
from bench.kernels.neighbours import TASKS_PER_THREAD, slope_one_pairs
from bench.kernels.pair_random import pair_normal

from .scoring import SurpriseAdapter, by_code, inner_ids

#: pairs per chunk when gathering factor rows for ``predict``
PAIR_CHUNK = 65_536


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
        self.bu_ = by_code(self.algo_.bu, p.user_inner)
        self.bi_ = by_code(self.algo_.bi, p.item_inner)
        self.pu_ = by_code(self.user_factors(), p.user_inner)
        self.qi_ = by_code(self.algo_.qi, p.item_inner)

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


class BaselineOptions:
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


class BaselineOnly(BaselineOptions, SurpriseAdapter):
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
        self.bu_ = by_code(self.algo_.bu, p.user_inner)  # zero for unknown users
        self.bi_ = by_code(self.algo_.bi, p.item_inner)

    def estimate_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = inner_ids(self.prepared_.user_inner, users)
        i = inner_ids(self.prepared_.item_inner, items)
        bu = np.where(u >= 0, self.bu_[np.where(u >= 0, users, 0)], 0.0)
        bi = np.where(i >= 0, self.bi_[np.where(i >= 0, items, 0)], 0.0)
        return self.global_mean_ + bu + bi

    def estimate_block(self, users: np.ndarray) -> np.ndarray:
        u = inner_ids(self.prepared_.user_inner, users)
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
        u = inner_ids(self.prepared_.user_inner, users)
        i = inner_ids(self.prepared_.item_inner, items)
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
        u = inner_ids(self.prepared_.user_inner, users)
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
        u = inner_ids(self.prepared_.user_inner, users)
        i = inner_ids(self.prepared_.item_inner, items)
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
        u = inner_ids(self.prepared_.user_inner, users)
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
