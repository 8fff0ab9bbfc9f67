"""recbench's own alternating least squares: a readable reference over ``bench.kernels.als``.

Two models share the kernels' conventions (float32, rows solved independently in parallel):

* ``ExplicitALS``: ``r_ui ~ mu + b_u + b_i + p_u . q_i``, squared error on observed ratings,
  L2 on factors scaled by ``max(n, 1) ** reg_exponent`` (``n`` = the row's rating
  count; exponent 1 is ALS-WR) and, separately, plain L2 on biases.  Each row's
  ``(b, p)`` is solved by a few warm-started conjugate-gradient steps (default; cost
  ``O(K)`` per rating and step) or exactly by Cholesky (``solver="cholesky"``, ``O(K^2)``
  per rating).  Optional genre prior: item factors are pulled toward the mean of learned
  genre embeddings instead of toward zero, so an item without ratings gets its prior.
  Every step decreases its block's objective, so the training loss never increases.
* ``ImplicitALS``: Hu-Koren-Volinsky weighted ALS with confidence ``1 + alpha * r``,
  solved by a few conjugate-gradient steps per row (or exactly by Cholesky).

Both take the thread count explicitly, like any library with a thread knob: numba and BLAS
run on it (``bench.execution.threads.limited``) and it is recorded in ``threads_used_``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bench.data.model import Features, Ratings
from bench.evaluation.metrics import hits_matrix, ranking_metrics
from bench.evaluation.ranking import recommend
from bench.execution import progress
from bench.execution.threads import limited
from bench.kernels import als as kernels


@dataclass(frozen=True)
class CSR:
    """A sparse matrix as the kernels take it: int64 indptr, int32 indices, float32 values."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return self.indptr.shape[0] - 1

    def row_counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def to_scipy(self) -> sp.csr_matrix:
        """The same matrix as scipy CSR (shares the arrays)."""
        return sp.csr_matrix((self.values, self.indices, self.indptr), (self.n_rows, self.n_cols))

    @classmethod
    def from_coo(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple) -> CSR:
        indptr, indices, data = kernels.build_csr(
            np.ascontiguousarray(rows, dtype=np.int32),
            np.ascontiguousarray(cols, dtype=np.int32),
            np.ascontiguousarray(values, dtype=np.float32),
            int(shape[0]),
        )
        return cls(indptr, indices, data, int(shape[1]))


@dataclass(frozen=True)
class Interactions:
    """Both orientations of the training matrix, built once (the adapter's ``prepare``)."""

    by_user: CSR
    by_item: CSR

    @property
    def n_users(self) -> int:
        return self.by_user.n_rows

    @property
    def n_items(self) -> int:
        return self.by_item.n_rows

    @classmethod
    def from_arrays(
        cls, users: np.ndarray, items: np.ndarray, values: np.ndarray, n_users: int, n_items: int
    ) -> Interactions:
        return cls(
            CSR.from_coo(users, items, values, (n_users, n_items)),
            CSR.from_coo(items, users, values, (n_items, n_users)),
        )

    @classmethod
    def from_ratings(cls, ratings: Ratings, values: np.ndarray | None = None) -> Interactions:
        vals = ratings.ratings if values is None else values
        return cls.from_arrays(
            ratings.users, ratings.items, vals, ratings.n_users, ratings.n_items
        )

    @classmethod
    def from_scipy(cls, user_items: sp.csr_matrix) -> Interactions:
        coo = user_items.tocoo()
        return cls.from_arrays(coo.row, coo.col, coo.data, *user_items.shape)


def _gram(factors: np.ndarray, reg: float) -> np.ndarray:
    """``Y^T Y + reg I`` in float32."""
    return kernels.gram(factors, np.float32(reg))


def _genre_weights(item_features: Features, n_items: int) -> sp.csr_matrix:
    """Row-normalised item x genre matrix: the prior of an item is the mean of its genres."""
    w = sp.csr_matrix(item_features.matrix, dtype=np.float32)
    if w.shape[0] != n_items:
        raise ValueError(f"item_features has {w.shape[0]} rows, expected {n_items}")
    w.data = np.abs(w.data)
    sums = np.asarray(w.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ w, dtype=np.float32)


def validation_ndcg(
    score: Callable[[np.ndarray], np.ndarray],
    seen: sp.csr_matrix,
    validation: sp.csr_matrix,
    k: int,
) -> float:
    """Mean NDCG@k of ``validation``'s stored entries over the users that have any.

    ``score(users)`` gives every item's score; each user's ``seen`` items are excluded, as
    in the evaluation of a trial (same exclusion, tie order and metric functions).
    """
    validation = sp.csr_matrix(validation)
    validation.sort_indices()
    n_items = validation.shape[1]
    counts = np.diff(validation.indptr)
    users = np.flatnonzero(counts > 0).astype(np.int32)
    keys = np.repeat(np.arange(validation.shape[0], dtype=np.int64), counts) * n_items
    keys += validation.indices
    hits = hits_matrix(recommend(score, users, seen, k), users, keys, n_items)
    ndcg = ranking_metrics(hits, counts[users], k)["ndcg"]
    return float(ndcg.mean()) if len(users) else 0.0


class ExplicitALS:
    """Biased matrix factorisation fitted by exact alternating least squares."""

    def __init__(
        self,
        factors: int = 32,
        iterations: int = 9,
        reg_factors: float = 1.25,
        reg_bias: float = 3.0,
        reg_exponent: float = 0.5,
        genre_prior: bool = False,
        reg_genre: float = 1.0,
        solver: str = "cg",
        cg_steps: int = 2,
        init_scale: float = 0.1,
        patience: int = 3,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        if solver not in ("cg", "cholesky"):
            raise ValueError(f"solver must be 'cg' or 'cholesky', not {solver!r}")
        self.factors = factors
        self.iterations = iterations
        self.reg_factors = reg_factors
        self.reg_bias = reg_bias
        self.reg_exponent = reg_exponent
        self.genre_prior = genre_prior
        self.reg_genre = reg_genre
        self.solver = solver
        self.cg_steps = cg_steps
        self.init_scale = init_scale
        self.patience = patience
        self.seed = seed
        self.threads = threads

    # -- helpers -------------------------------------------------------------------------
    def _row_regs(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Factors: lam * n ** exponent (ALS-WR at 1); biases: plain L2, as Koren's baseline.
        scale = np.maximum(counts, 1).astype(np.float64) ** self.reg_exponent
        return (
            (self.reg_factors * scale).astype(np.float32),
            np.full(len(counts), self.reg_bias, dtype=np.float32),
        )

    def _item_prior(self) -> np.ndarray:
        if self.genre_weights_ is None:
            return np.zeros((0, self.factors), dtype=np.float32)
        return np.ascontiguousarray(self.genre_weights_ @ self.genre_factors_, dtype=np.float32)

    def _update_genres(self) -> None:
        """Exact minimiser of ``sum_i lam_i |q_i - (W E)_i|^2 + reg_genre |E|^2`` over E."""
        w = self.genre_weights_
        wd = sp.csr_matrix(w.T @ sp.diags(self.item_reg_f_.astype(np.float64)))
        lhs = (wd @ w).toarray() + self.reg_genre * np.eye(w.shape[1])
        rhs = wd @ self.item_factors_.astype(np.float64)
        self.genre_factors_ = np.linalg.solve(lhs, rhs).astype(np.float32)

    def _solve(self, rows: CSR, other: tuple, regs: tuple, prior: np.ndarray, own: tuple) -> None:
        mu = np.float32(self.global_mean_)
        if self.solver == "cg":
            kernels.explicit_cg_halfstep(
                rows.indptr, rows.indices, rows.values, *other, mu, *regs, prior, *own,
                self.cg_steps,
            )  # fmt: skip
        else:
            kernels.explicit_halfstep(
                rows.indptr, rows.indices, rows.values, *other, mu, *regs, prior, *own
            )

    def _half_steps(self, data: Interactions) -> None:
        """Items (then genres), then users: the users end solved against the final items,
        as ``fold_in`` solves a new user, so fitted and folded-in users agree."""
        self._solve(
            data.by_item,
            (self.user_factors_, self.user_bias_),
            (self.item_reg_f_, self.item_reg_b_),
            self._item_prior(),
            (self.item_factors_, self.item_bias_),
        )
        if self.genre_weights_ is not None:
            self._update_genres()
        self._solve(
            data.by_user,
            (self.item_factors_, self.item_bias_),
            (self.user_reg_f_, self.user_reg_b_),
            np.zeros((0, self.factors), dtype=np.float32),
            (self.user_factors_, self.user_bias_),
        )

    def training_loss(self, data: Interactions) -> float:
        """The objective the steps minimise (squared error plus every penalty), float64."""
        u = data.by_user
        sse = kernels.explicit_squared_error(
            u.indptr, u.indices, u.values, self.user_factors_, self.user_bias_,
            self.item_factors_, self.item_bias_, np.float32(self.global_mean_),
        )  # fmt: skip
        q = self.item_factors_.astype(np.float64)
        prior = self._item_prior()
        if prior.shape[0]:
            q = q - prior
        penalty = (
            np.dot(self.user_reg_f_, np.square(self.user_factors_, dtype=np.float64).sum(1))
            + np.dot(self.user_reg_b_, np.square(self.user_bias_, dtype=np.float64))
            + np.dot(self.item_reg_f_, np.square(q).sum(1))
            + np.dot(self.item_reg_b_, np.square(self.item_bias_, dtype=np.float64))
        )
        if self.genre_weights_ is not None:
            genre_norm = np.square(self.genre_factors_, dtype=np.float64).sum()
            penalty += self.reg_genre * float(genre_norm)
        return float(sse + penalty)

    # -- fitting ---------------------------------------------------------------------------
    def prepare(self, train: Ratings) -> Interactions:
        return Interactions.from_ratings(train)

    def fit(
        self,
        train: Ratings | Interactions,
        item_features: Features | None = None,
        validation: Ratings | None = None,
        rating_scale: tuple[float, float] | None = None,
        track_loss: bool = False,
        callback: Callable[[int], None] | None = None,
    ) -> ExplicitALS:
        """Fit on ``train``; with ``validation``, stop early on its RMSE and keep the best.

        ``item_features`` is used only when ``genre_prior`` is set.  ``track_loss`` records
        the training objective after every iteration in ``loss_history_`` (costs a pass).
        ``callback(i)`` runs after iteration ``i`` (1-based), when the model can predict.
        """
        data = train if isinstance(train, Interactions) else self.prepare(train)
        n_users, n_items, k = data.n_users, data.n_items, self.factors
        self.rating_scale_ = rating_scale
        nnz = data.by_user.values.shape[0]
        self.global_mean_ = float(data.by_user.values.sum(dtype=np.float64) / max(nnz, 1))
        self.user_reg_f_, self.user_reg_b_ = self._row_regs(data.by_user.row_counts())
        self.item_reg_f_, self.item_reg_b_ = self._row_regs(data.by_item.row_counts())
        rng = np.random.default_rng(self.seed)
        self.user_factors_ = (rng.standard_normal((n_users, k)) * self.init_scale).astype(
            np.float32
        )
        self.user_bias_ = np.zeros(n_users, dtype=np.float32)
        self.item_factors_ = np.zeros((n_items, k), dtype=np.float32)
        self.item_bias_ = np.zeros(n_items, dtype=np.float32)
        self.genre_weights_ = None
        if self.genre_prior:
            if item_features is None:
                raise ValueError("genre_prior=True needs item_features")
            self.genre_weights_ = _genre_weights(item_features, n_items)
            self.genre_factors_ = np.zeros((self.genre_weights_.shape[1], k), dtype=np.float32)
        self.loss_history_: list[float] = []
        self.validation_rmse_: list[float] = []
        # wall and CPU (all threads) seconds per iteration; CPU time is what a shared
        # machine cannot inflate
        self.iteration_seconds_: list[float] = []
        self.iteration_cpu_seconds_: list[float] = []
        best: tuple | None = None
        best_rmse = np.inf
        self.best_iteration_ = self.iterations
        with limited(self.threads) as used:
            self.threads_used_ = used
            for it in range(self.iterations):
                progress.report("fit iteration", it + 1, self.iterations)
                start, cpu = time.perf_counter(), time.process_time()
                self._half_steps(data)
                self.iteration_seconds_.append(time.perf_counter() - start)
                self.iteration_cpu_seconds_.append(time.process_time() - cpu)
                if track_loss:
                    self.loss_history_.append(self.training_loss(data))
                if callback is not None:
                    callback(it + 1)
                if validation is not None and len(validation):
                    pred = self.predict(validation.users, validation.items)
                    rmse = float(np.sqrt(np.mean(np.square(pred - validation.ratings))))
                    self.validation_rmse_.append(rmse)
                    if rmse < best_rmse:
                        best_rmse, self.best_iteration_ = rmse, it + 1
                        best = self._state()
                    elif it + 1 - self.best_iteration_ >= self.patience:
                        break
        if best is not None:
            self._restore(best)
        return self

    def _state(self) -> tuple:
        genres = self.genre_factors_.copy() if self.genre_weights_ is not None else None
        return (
            self.user_factors_.copy(),
            self.user_bias_.copy(),
            self.item_factors_.copy(),
            self.item_bias_.copy(),
            genres,
        )

    def _restore(self, state: tuple) -> None:
        (self.user_factors_, self.user_bias_, self.item_factors_, self.item_bias_, genres) = state
        if genres is not None:
            self.genre_factors_ = genres

    # -- outputs ---------------------------------------------------------------------------
    def _clip(self, values: np.ndarray) -> np.ndarray:
        if self.rating_scale_ is not None:
            np.clip(values, self.rating_scale_[0], self.rating_scale_[1], out=values)
        return values

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Rating estimates, clipped to the rating scale when it was given to ``fit``."""
        with limited(self.threads, blas=False):
            out = kernels.predict_pairs(
                np.ascontiguousarray(users, dtype=np.int32),
                np.ascontiguousarray(items, dtype=np.int32),
                self.user_factors_, self.user_bias_, self.item_factors_, self.item_bias_,
                np.float32(self.global_mean_),
            )  # fmt: skip
        return self._clip(out)

    def score_vectors(self, user_vectors: np.ndarray) -> np.ndarray:
        """Rating estimates of every item for users given as ``[b_u, p_u]`` rows (fold-in)."""
        v = np.atleast_2d(np.asarray(user_vectors, dtype=np.float32))
        with limited(self.threads):
            out = v[:, 1:] @ self.item_factors_.T
        out += v[:, :1]
        out += self.item_bias_ + np.float32(self.global_mean_)
        return self._clip(out)

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """``[b_u, p_u]`` rows of fitted users (the layout ``fold_in`` returns)."""
        users = np.asarray(users, dtype=np.int64)
        return np.hstack([self.user_bias_[users, None], self.user_factors_[users]])

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.score_vectors(self.user_vectors(users))

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """``[b_u, p_u]`` of a new user from a few ratings, items fixed (no refit).

        The same system (and penalty) as a user half-step, solved exactly; the fit ends with
        a user half-step, so folding in a training user's own ratings gives back that user's
        fitted vector (exactly with ``solver="cholesky"``, to CG accuracy with ``"cg"``).
        """
        items = np.asarray(items, dtype=np.int32)
        ratings = np.asarray(ratings, dtype=np.float32)
        n_items = self.item_factors_.shape[0]
        row = CSR(np.array([0, len(items)], dtype=np.int64), items, ratings, n_items)
        reg_f, reg_b = self._row_regs(np.array([len(items)]))
        factors = np.zeros((1, self.factors), dtype=np.float32)
        bias = np.zeros(1, dtype=np.float32)
        with limited(self.threads, blas=False):
            kernels.explicit_halfstep(
                row.indptr, row.indices, row.values, self.item_factors_, self.item_bias_,
                np.float32(self.global_mean_), reg_f, reg_b,
                np.zeros((0, self.factors), dtype=np.float32), factors, bias,
            )  # fmt: skip
        return np.concatenate([bias, factors[0]])


class ImplicitALS:
    """Hu-Koren-Volinsky implicit ALS: confidence ``1 + alpha * r`` on stored entries."""

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.1,
        alpha: float = 1.0,
        solver: str = "cg",
        cg_steps: int = 3,
        patience: int = 3,
        validation_k: int = 10,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        if solver not in ("cg", "cholesky"):
            raise ValueError(f"solver must be 'cg' or 'cholesky', not {solver!r}")
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.solver = solver
        self.cg_steps = cg_steps
        self.patience = patience
        self.validation_k = validation_k
        self.seed = seed
        self.threads = threads

    def confidence(self, values: np.ndarray) -> np.ndarray:
        return (1.0 + self.alpha * np.asarray(values, dtype=np.float32)).astype(np.float32)

    def prepare(self, train: Ratings) -> Interactions:
        return Interactions.from_ratings(train, self.confidence(train.ratings))

    def prepare_interactions(self, user_items: sp.csr_matrix) -> Interactions:
        """From a user x item CSR of interaction values ``x``: confidence ``1 + alpha x``."""
        m = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        m.data = self.confidence(m.data)
        return Interactions.from_scipy(m)

    def prepare_confidence(self, user_confidence: sp.csr_matrix) -> Interactions:
        """Use a user x item matrix of confidences as given (to share one with implicit)."""
        return Interactions.from_scipy(sp.csr_matrix(user_confidence, dtype=np.float32))

    def _half_step(self, rows: CSR, other: np.ndarray, own: np.ndarray) -> None:
        gram = _gram(other, self.regularization)
        if self.solver == "cg":
            kernels.implicit_cg_halfstep(
                rows.indptr, rows.indices, rows.values, gram, other, own, self.cg_steps
            )
        else:
            kernels.implicit_cholesky_halfstep(
                rows.indptr, rows.indices, rows.values, gram, other, own
            )

    def training_loss(self, data: Interactions) -> float:
        """``sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2)`` over every pair."""
        u = data.by_user
        item_gram = kernels.gram(self.item_factors_, np.float32(0.0))
        weighted = kernels.implicit_loss_terms(
            u.indptr, u.indices, u.values, item_gram, self.user_factors_, self.item_factors_
        )
        norms = np.square(self.user_factors_, dtype=np.float64).sum() + np.square(
            self.item_factors_, dtype=np.float64
        ).sum()
        return float(weighted + self.regularization * norms)

    def fit(
        self,
        train: Ratings | Interactions,
        validation: sp.csr_matrix | None = None,
        track_loss: bool = False,
        callback: Callable[[int], None] | None = None,
    ) -> ImplicitALS:
        """Fit on ``train``; with ``validation``, stop early on its NDCG and keep the best.

        ``validation`` is a user x item matrix whose stored entries are held-out positives
        (disjoint from ``train``).  After every iteration their NDCG@``validation_k``, ranking
        every item the user has no train entry for, is appended to ``validation_ndcg_``;
        after ``patience`` iterations without a gain the fit stops and keeps the factors of
        the best one (``best_iteration_``).  ``callback(i)`` runs after iteration ``i``
        (1-based).
        """
        data = train if isinstance(train, Interactions) else self.prepare(train)
        rng = np.random.default_rng(self.seed)
        # implicit's initialisation: uniform [0, 0.01)
        self.user_factors_ = rng.random((data.n_users, self.factors), dtype=np.float32) * 0.01
        self.item_factors_ = rng.random((data.n_items, self.factors), dtype=np.float32) * 0.01
        self.item_counts_ = data.by_item.row_counts()
        self.loss_history_: list[float] = []
        self.validation_ndcg_: list[float] = []
        self.iteration_seconds_: list[float] = []
        self.iteration_cpu_seconds_: list[float] = []
        self.best_iteration_ = self.iterations
        best: tuple[np.ndarray, np.ndarray] | None = None
        best_ndcg = -np.inf
        seen = data.by_user.to_scipy() if validation is not None else None
        with limited(self.threads) as used:
            self.threads_used_ = used
            for it in range(self.iterations):
                progress.report("fit iteration", it + 1, self.iterations)
                start, cpu = time.perf_counter(), time.process_time()
                self._half_step(data.by_user, self.item_factors_, self.user_factors_)
                self._half_step(data.by_item, self.user_factors_, self.item_factors_)
                self.iteration_seconds_.append(time.perf_counter() - start)
                self.iteration_cpu_seconds_.append(time.process_time() - cpu)
                if track_loss:
                    self.loss_history_.append(self.training_loss(data))
                if callback is not None:
                    callback(it + 1)
                if seen is not None and validation.nnz:
                    ndcg = validation_ndcg(self.score, seen, validation, self.validation_k)
                    self.validation_ndcg_.append(ndcg)
                    if ndcg > best_ndcg:
                        best_ndcg, self.best_iteration_ = ndcg, it + 1
                        best = (self.user_factors_.copy(), self.item_factors_.copy())
                    elif it + 1 - self.best_iteration_ >= self.patience:
                        break
        if best is not None:
            self.user_factors_, self.item_factors_ = best
        return self

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Exact factors of a new user from its (item, rating) rows, items fixed."""
        items = np.asarray(items, dtype=np.int32)
        conf = self.confidence(ratings)
        factors = np.zeros((1, self.factors), dtype=np.float32)
        with limited(self.threads, blas=False):
            gram = _gram(self.item_factors_, self.regularization)
            kernels.implicit_cholesky_halfstep(
                np.array([0, len(items)], dtype=np.int64), items, conf, gram,
                self.item_factors_, factors,
            )  # fmt: skip
        return factors[0]

    def score_vectors(self, user_vectors: np.ndarray) -> np.ndarray:
        v = np.atleast_2d(np.asarray(user_vectors, dtype=np.float32))
        with limited(self.threads):
            return v @ self.item_factors_.T

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[np.asarray(users, dtype=np.int64)]

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.score_vectors(self.user_vectors(users))
