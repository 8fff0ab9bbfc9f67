"""implicit (CPU) adapters: ALS, BPR, LMF and item-item nearest neighbours.

Used as implicit 0.7 documents it: ``model.fit(user_items)`` with users as rows (a CSR of
interactions built by the shared feedback policy, ``bench.data.feedback``), the CPU classes
directly (so a CUDA build cannot silently switch device), ``num_threads`` from the runner and
BLAS limited to one thread while fitting, as implicit's own start-up warning asks.

``score`` returns what ``model.recommend(..., filter_already_liked_items=False)`` ranks by,
for every item at once: ``user_factors @ item_factors.T`` for factor models (BPR's last
columns carry the item bias), ``user_items @ similarity`` for the nearest-neighbour models.
The harness, not the adapter, removes train items.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.cpu.lmf import LogisticMatrixFactorization
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

from bench.adapter import LearnsFromInteractions
from bench.data.feedback import fill_cold_users, item_popularity
from bench.data.model import Ratings, TrainSet
from bench.evaluation.ranking import FactorScores
from bench.execution.threads import blas_limited


class _ImplicitAdapter(LearnsFromInteractions):
    library: ClassVar[str] = "implicit"
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True

    def prepare(self, train: TrainSet) -> sp.csr_matrix:
        return self.interactions(train)

    def _make_model(self) -> Any:
        raise NotImplementedError

    def fit_prepared(self, prepared: sp.csr_matrix) -> _ImplicitAdapter:
        self.user_items_ = prepared
        self.user_has_train_ = np.diff(prepared.indptr) > 0
        self.popularity_ = item_popularity(prepared)
        # implicit runs its own thread pool; a multi-threaded BLAS inside it oversubscribes.
        with blas_limited(1), warnings.catch_warnings():
            # The KNN models re-weight into COO themselves and then warn about their own
            # conversion back to CSR; the matrix the adapter passes is already CSR.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model_ = self._make_model()  # its constructor checks the BLAS threads
            self.model_.fit(prepared, show_progress=False)
        return self

    def _raw_scores(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = np.asarray(self._raw_scores(users), dtype=np.float32)
        return fill_cold_users(scores, users, self.user_has_train_, self.popularity_)


class _FactorAdapter(_ImplicitAdapter):
    #: the implicit class; its keyword arguments are this adapter's own parameters
    model_class: ClassVar[type]
    extra_model_kwargs: ClassVar[dict[str, Any]] = {}

    def _make_model(self) -> Any:
        return self.model_class(
            **self.library_params(),
            **self.extra_model_kwargs,
            num_threads=self.threads,
            random_state=self.seed,
        )

    def factor_scores(self, users: np.ndarray) -> FactorScores:
        users = np.asarray(users, dtype=np.int32)
        return FactorScores(
            self.model_.user_factors[users],
            self.model_.item_factors,
            score_rows=~self.user_has_train_[users],  # scored by popularity in ``score``
            score_rows_scores=self.popularity_,
        )

    def _raw_scores(self, users: np.ndarray) -> np.ndarray:
        return self.factor_scores(users).block()  # user_factors[users] @ item_factors.T


class ALS(_FactorAdapter):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) with the conjugate-gradient solver."""

    name = "implicit.ALS"
    model_class = AlternatingLeastSquares
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [16, 32, 64],
        "regularization": [1.0, 10.0, 30.0],
        "alpha": [1.0, 5.0, 10.0],
        "iterations": [15, 30],
    }

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        use_cg: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha  # implicit's own weight of positive entries (confidence = alpha * x)
        self.iterations = iterations
        self.use_cg = use_cg


    folds_in_users: ClassVar[bool] = True

    def fold_in_users(self, revealed: Ratings) -> None:
        """implicit's own mechanism: ``partial_fit_users`` solves the new users' factors
        against the fixed item factors (``recalculate_user``), without refitting."""
        rows = self.interactions(revealed)
        users = np.unique(revealed.users)
        with blas_limited(1):
            self.model_.partial_fit_users(users, rows[users])
        self.user_has_train_[users] = True
        self.user_items_ = (self.user_items_ + rows).tocsr()


class BPR(_FactorAdapter):
    """Bayesian Personalised Ranking by SGD, negatives verified against the user's items."""

    name = "implicit.BPR"
    model_class = BayesianPersonalizedRanking
    parallel_sgd: ClassVar[bool] = True  # lock-free SGD across its threads
    extra_model_kwargs: ClassVar[dict[str, Any]] = {"verify_negative_samples": True}
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64, 128],
        "learning_rate": [0.0025, 0.005, 0.01],
        "regularization": [0.001, 0.01],
        "iterations": [50, 100, 200],
    }

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations



class LMF(_FactorAdapter):
    """Logistic matrix factorisation (Johnson 2014)."""

    name = "implicit.LMF"
    model_class = LogisticMatrixFactorization
    parallel_sgd: ClassVar[bool] = True  # lock-free SGD across its threads
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [30, 64],
        "learning_rate": [0.3, 1.0],
        "regularization": [0.3, 0.6, 1.0],
        "iterations": [30, 60],
    }

    def __init__(
        self,
        factors: int = 30,
        learning_rate: float = 1.0,
        regularization: float = 0.6,
        iterations: int = 30,
        neg_prop: int = 30,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.neg_prop = neg_prop



class _NeighboursAdapter(_ImplicitAdapter):
    """Item-item K nearest neighbours: score(u, j) = sum_i x_ui * similarity(i, j)."""
    stochastic: ClassVar[bool] = False  # exact neighbourhoods: nothing random

    scores_cold_users: ClassVar[bool] = False
    search_space: ClassVar[dict[str, list[Any]]] = {"K": [20, 50, 100, 200]}
    #: the implicit class, built with ``K`` and ``num_threads``
    model_class: ClassVar[type]

    def __init__(
        self,
        K: int = 20,  # implicit's own parameter name
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.K = K

    def _make_model(self) -> Any:
        return self.model_class(K=self.K, num_threads=self.threads)

    def _raw_scores(self, users: np.ndarray) -> np.ndarray:
        # The same sum implicit's NearestNeighboursScorer computes, for a block of users.
        return (self.user_items_[users] @ self.model_.similarity).toarray()


class CosineKNN(_NeighboursAdapter):
    name = "implicit.CosineKNN"
    model_class = CosineRecommender


class TFIDFKNN(_NeighboursAdapter):
    name = "implicit.TFIDFKNN"
    model_class = TFIDFRecommender


class BM25KNN(_NeighboursAdapter):
    name = "implicit.BM25KNN"
    search_space: ClassVar[dict[str, list[Any]]] = {
        "K": [20, 50, 100, 200],
        "K1": [1.2, 100.0],
        "B": [0.75, 0.8],
    }

    def __init__(
        self,
        K: int = 20,  # implicit's own parameter names
        K1: float = 1.2,
        B: float = 0.75,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(K=K, seed=seed, threads=threads)
        self.K1 = K1
        self.B = B

    def _make_model(self) -> BM25Recommender:
        return BM25Recommender(K=self.K, K1=self.K1, B=self.B, num_threads=self.threads)
