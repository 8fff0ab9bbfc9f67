"""Truncated SVD of the user-item matrix with ``scipy.sparse.linalg.svds``.

* ``scipy.PureSVD`` (Cremonesi, Koren, Turrin 2010): rank-k SVD of the interaction matrix
  (shared feedback policy, ``bench.data.feedback``); a user's scores are their row of
  ``U S V^T``.  Ranking only.
* ``scipy.SVD``: rating prediction.  Ratings minus a damped baseline ``mu + b_u + b_i``
  (unrated cells count as the baseline), rank-k SVD of those residuals, prediction
  ``baseline + U S V^T`` clipped to the rating scale.  Ranks by the predicted rating.

scikit-learn's ``TruncatedSVD`` (``adapters/sklearn.py``) is scored the same way as PureSVD:
its default randomized solver approximates the factorisation ``svds`` computes here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from bench.adapter import Adapter, ProjectsInteractions
from bench.data.model import TrainSet
from bench.errors import UserError


def truncated_svd(
    matrix: sp.csr_matrix, rank: int, seed: int, solver: str = "arpack"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``U (n x k), s (k), Vt (k x m)`` of the rank-k SVD, largest singular value first."""
    limit = min(matrix.shape) - 1  # svds needs k < min(shape)
    if not 1 <= rank <= limit:
        raise UserError(f"rank must be between 1 and {limit} for this data, got {rank}")
    # A fixed start vector makes ARPACK deterministic for a given seed.
    v0 = np.random.default_rng(seed).uniform(-1.0, 1.0, min(matrix.shape))
    u, s, vt = svds(matrix.astype(np.float64), k=rank, v0=v0, solver=solver)
    order = np.argsort(-s)
    return (
        u[:, order].astype(np.float32),
        s[order].astype(np.float32),
        vt[order].astype(np.float32),
    )


def _damped_mean(sums: np.ndarray, counts: np.ndarray, shrinkage: float) -> np.ndarray:
    """sum / (count + shrinkage); 0 where there is nothing to average (no rows, no shrinkage)."""
    denominator = counts + shrinkage
    return np.divide(sums, denominator, out=np.zeros_like(sums), where=denominator > 0)


class PureSVD(ProjectsInteractions):
    name = "scipy.PureSVD"
    defaults_by: ClassVar[str] = "recbench"  # scipy has no such model: our defaults
    #: the seed only picks ARPACK's start vector; the truncated SVD it converges to is
    #: unique up to signs, which cancel in the scores
    stochastic: ClassVar[bool] = False
    library = "scipy"
    predicts_ratings = False
    ranks = True
    search_space: ClassVar[dict[str, list[Any]]] = {"rank": [10, 20, 50, 100, 200]}

    def __init__(
        self,
        rank: int = 50,
        solver: str = "arpack",
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.rank = rank
        self.solver = solver

    def fit_prepared(self, prepared: sp.csr_matrix) -> PureSVD:
        u, s, vt = truncated_svd(prepared, self.rank, self.seed, self.solver)
        self.keep_factors(prepared, u * s, vt)  # U S: scores are then one product with Vt
        return self


class SVD(Adapter):
    name = "scipy.SVD"
    defaults_by: ClassVar[str] = "recbench"  # scipy has no such model: our defaults
    #: the seed only picks ARPACK's start vector; the truncated SVD it converges to is
    #: unique up to signs, which cancel in the scores
    stochastic: ClassVar[bool] = False
    library = "scipy"
    predicts_ratings = True
    ranks = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        "rank": [2, 5, 10, 20, 50],
        "shrinkage": [5.0, 25.0],
    }

    def __init__(
        self,
        rank: int = 10,
        shrinkage: float = 10.0,
        solver: str = "arpack",
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.rank = rank
        self.shrinkage = shrinkage  # pseudo-count pulling the biases of rare users/items to 0
        self.solver = solver

    def prepare(self, train: TrainSet) -> TrainSet:
        return train  # the residuals depend on the biases, which are part of fitting

    def fit_prepared(self, prepared: TrainSet) -> SVD:
        r = prepared.ratings
        values = r.ratings.astype(np.float64)
        self.global_mean_ = float(values.mean()) if len(values) else 0.0
        self.rating_scale_ = prepared.rating_scale
        residual = values - self.global_mean_
        item_counts = np.bincount(r.items, minlength=r.n_items)
        item_sums = np.bincount(r.items, weights=residual, minlength=r.n_items)
        self.item_bias_ = _damped_mean(item_sums, item_counts, self.shrinkage)
        residual -= self.item_bias_[r.items]
        user_counts = np.bincount(r.users, minlength=r.n_users)
        user_sums = np.bincount(r.users, weights=residual, minlength=r.n_users)
        self.user_bias_ = _damped_mean(user_sums, user_counts, self.shrinkage)
        residual -= self.user_bias_[r.users]
        matrix = sp.csr_matrix((residual, (r.users, r.items)), shape=(r.n_users, r.n_items))
        u, s, vt = truncated_svd(matrix, self.rank, self.seed, self.solver)
        # Users / items without train rows have zero rows here: they get the baseline.
        self.user_factors_ = u * s
        self.item_factors_ = vt
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        interaction = np.einsum(
            "ij,ji->i", self.user_factors_[users], self.item_factors_[:, items]
        )
        estimate = self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
        low, high = self.rating_scale_
        return np.clip(estimate + interaction, low, high).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        interaction = self.user_factors_[users] @ self.item_factors_
        estimate = interaction + (self.global_mean_ + self.user_bias_[users])[:, None]
        estimate += self.item_bias_[None, :]
        low, high = self.rating_scale_
        return np.clip(estimate, low, high).astype(np.float32)
