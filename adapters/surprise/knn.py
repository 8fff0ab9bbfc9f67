"""Surprise's k-NN family (KNNBasic, KNNWithMeans, KNNWithZScore, KNNBaseline): one numba
kernel (``bench.kernels.neighbours.knn_aggregate``) for all four.

Estimate = base_x[x] + base_y[y] + scale_x[x] * sum(sim * res) / sum(sim), where each
neighbour's residual res = (r - off_x[x2] - off_y[y]) / div_x[x2] is precomputed per rating
in Surprise's list order; each variant only says how it normalises (``normalisation``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import surprise

from bench.execution.admission import DataShape
from bench.kernels.neighbours import TASKS_PER_THREAD, knn_aggregate, knn_scatter

from .models import BaselineOptions
from .scoring import SurpriseAdapter, inner_ids

#: (base_x, base_y, off_x, off_y, div_x, scale_x) of a k-NN variant, see KNNAdapter
Normalisation = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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
        u = inner_ids(self.prepared_.user_inner, users)
        i = inner_ids(self.prepared_.item_inner, items)
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
        u = inner_ids(p.user_inner, users)
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


class KNNBaseline(BaselineOptions, KNNAdapter):
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
