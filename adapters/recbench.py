"""recbench's own numba ALS (``bench.models.als``): explicit with biases, and implicit (HKV + CG).

Thin over ``bench.models.als``; the kernels are in ``bench.kernels.als``.  Besides the adapter
contract, both adapters offer fold-in for users unseen in fit (the cold-start suite):

* ``fold_in(items, ratings) -> vector``: a user's vector from a few (item code, rating)
  rows, item side fixed, no refit.  Explicit: ``[b_u, p_u...]`` (length factors + 1);
  implicit: ``p_u`` (length factors), from the same feedback policy as training.
* ``score_folded(vectors) -> float32[n, n_items]``: scores of every item for stacked
  vectors (same semantics as ``score``); explicit also has ``predict_folded(vector, items)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from bench.adapter import Adapter, LearnsFromInteractions
from bench.data.feedback import fill_cold_users, item_popularity
from bench.data.model import Ratings, TrainSet
from bench.evaluation.ranking import FactorScores
from bench.execution.admission import DataShape
from bench.execution.registry import Preset
from bench.models import ease
from bench.models.als import ExplicitALS, Interactions
from bench.models.als import ImplicitALS as ImplicitALSModel
from bench.models.federated import FederatedMF as FederatedModel

#: score of items that have no train rows in implicit mode: rank them after every other item
COLD_ITEM_SCORE = np.float32(np.finfo(np.float32).min)


NO_BIAS_PENALTY = 1e12


class _ReportsBestIteration:
    """Adds the iteration count chosen by early stopping to the trial record."""

    early_stopping: bool
    best_iteration_: int

    def fitted_info(self) -> dict[str, Any]:
        return {"best_iteration": int(self.best_iteration_)} if self.early_stopping else {}


class ALS(_ReportsBestIteration, Adapter):
    """Biased MF by ALS; rating estimates, and a ranking by them.

    Defaults were chosen on seeded ML-100k-shaped synthetic data that no suite scores
    (``benchmarks/choose_defaults.py``, ``results/defaults_synthetic.md``): a default
    picked on a dataset the leaderboard scores would be a tuned setting without the label.
    Settings tuned on a real dataset are the suites' nested ``tuned`` rows.
    ``early_stopping`` holds out ``validation_fraction`` of the train
    rows, finds the best iteration count on them, then refits on all train rows with it.
    """

    name = "recbench.ALS"
    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    records_curve: ClassVar[bool] = True
    library = "recbench"
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True
    uses_side_features: ClassVar[bool] = False
    scores_cold_users: ClassVar[bool] = False
    scores_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [16, 32, 64],
        "reg_factors": [1.0, 1.25, 1.5],
        "reg_bias": [1.0, 3.0, 10.0],
        "iterations": [9, 20],
    }

    def __init__(
        self,
        factors: int = 8,
        iterations: int = 20,
        reg_factors: float = 1.0,
        reg_bias: float = 3.0,
        reg_exponent: float = 0.5,
        biases: bool = True,
        genre_prior: bool = False,
        reg_genre: float = 1.0,
        solver: str = "cg",
        cg_steps: int = 2,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 3,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.biases = biases
        self.factors = factors
        self.iterations = iterations
        self.reg_factors = reg_factors
        self.reg_bias = reg_bias
        self.reg_exponent = reg_exponent
        self.genre_prior = genre_prior
        self.reg_genre = reg_genre
        self.solver = solver
        self.cg_steps = cg_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience

    def _model(self, iterations: int) -> ExplicitALS:
        return ExplicitALS(
            factors=self.factors,
            iterations=iterations,
            reg_factors=self.reg_factors,
            # Without biases the model is mu + p.q: an unbounded penalty pins b to 0.
            reg_bias=self.reg_bias if self.biases else NO_BIAS_PENALTY,
            reg_exponent=self.reg_exponent,
            genre_prior=self.genre_prior_used_,
            reg_genre=self.reg_genre,
            solver=self.solver,
            cg_steps=self.cg_steps,
            patience=self.patience,
            seed=self.seed,
            threads=self.threads,
        )

    def prepare(self, train: TrainSet) -> Interactions:
        return Interactions.from_ratings(train.ratings)

    def fit_prepared(
        self, prepared: Interactions, on_iteration: Callable[[int], None] | None = None
    ) -> ALS:
        train: TrainSet = self.train_
        # The prior needs genres; without item features the model is plain biased MF.
        self.genre_prior_used_ = bool(self.genre_prior and train.item_features is not None)
        features = train.item_features if self.genre_prior_used_ else None
        iterations = self.iterations
        if self.early_stopping:
            fit_rows, val_rows = _carve_validation(
                train.ratings, self.validation_fraction, self.seed
            )
            probe = self._model(self.iterations).fit(
                fit_rows, features, validation=val_rows, rating_scale=train.rating_scale
            )
            iterations = probe.best_iteration_
            self.validation_rmse_ = probe.validation_rmse_
        self.best_iteration_ = iterations
        # Bound before fitting so ``on_iteration`` can score the model mid-fit.
        self.model_ = self._model(iterations)
        self.model_.fit(
            prepared, features, rating_scale=train.rating_scale, callback=on_iteration
        )
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.model_.predict(users, items)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.model_.score(np.asarray(users, dtype=np.int32))

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """``[b_u, p_u...]`` of a user unseen in fit, from its (item code, rating) rows."""
        return self.model_.fold_in(items, ratings)

    def score_folded(self, vectors: np.ndarray) -> np.ndarray:
        return self.model_.score_vectors(vectors)

    def predict_folded(self, vector: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Rating estimates of ``items`` for one folded-in user."""
        return self.model_.score_vectors(vector)[0, np.asarray(items, dtype=np.int64)]

    folds_in_users: ClassVar[bool] = True

    def reads_side_information(self) -> bool:
        """With ``genre_prior`` the item factors are pulled toward genre embeddings: the
        model reads genres (after a fit: only if the train set had any)."""
        return bool(getattr(self, "genre_prior_used_", self.genre_prior))

    def fold_in_users(self, revealed: Ratings) -> None:
        """Solve each new user's ``[b_u, p_u]`` against the fixed items (no refit) and
        store it in the model, so ``predict`` and ``score`` use it like a fitted user."""
        for user, items, ratings in _rows_by_user(revealed):
            vector = self.fold_in(items, ratings)
            self.model_.user_bias_[user] = vector[0]
            self.model_.user_factors_[user] = vector[1:]


GENRE_ALS = Preset(
    "recbench.GenreALS",
    ALS,
    defaults={"genre_prior": True},
    traits={
        "uses_side_features": True,
        "scores_cold_items": True,  # by the genre prior
        "search_space": {**ALS.search_space, "reg_genre": [0.1, 1.0, 10.0]},
    },
    doc="``recbench.ALS`` with the genre prior: items without ratings are scored by it.",
)


class ImplicitALS(_ReportsBestIteration, LearnsFromInteractions):
    """Hu-Koren-Volinsky ALS, confidence ``1 + alpha * x`` (``x`` from the feedback policy).

    Note the convention differs from implicit's, whose confidence is ``alpha * x``: with
    the default ``feedback="all"`` (x = 1) this model weighs positives ``1 + alpha``.
    ``early_stopping`` holds out ``validation_fraction`` of the train rows, picks the
    iteration count with the best NDCG@10 of their positives (patience ``patience``),
    then refits on all train rows with it, as ``recbench.ALS`` does with RMSE.

    Defaults chosen like ``recbench.ALS``'s, on synthetic data only
    (``benchmarks/choose_defaults.py``).
    """

    name = "recbench.ImplicitALS"
    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    records_curve: ClassVar[bool] = True
    library = "recbench"
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64, 128],
        "regularization": [0.01, 0.1, 1.0],
        "alpha": [1.0, 5.0, 20.0],
        "iterations": [15, 30],
    }

    def __init__(
        self,
        factors: int = 16,
        iterations: int = 15,
        regularization: float = 10.0,
        alpha: float = 1.0,
        solver: str = "cg",
        cg_steps: int = 3,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 3,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.solver = solver
        self.cg_steps = cg_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self._model(iterations)  # fail early on a bad solver

    def _model(self, iterations: int) -> ImplicitALSModel:
        return ImplicitALSModel(
            factors=self.factors,
            iterations=iterations,
            regularization=self.regularization,
            alpha=self.alpha,
            solver=self.solver,
            cg_steps=self.cg_steps,
            patience=self.patience,
            seed=self.seed,
            threads=self.threads,
        )

    def prepare(self, train: TrainSet) -> tuple[Any, Interactions]:
        user_items = self.interactions(train)
        return user_items, self._model(self.iterations).prepare_interactions(user_items)

    def fit_prepared(
        self,
        prepared: tuple[Any, Interactions],
        on_iteration: Callable[[int], None] | None = None,
    ) -> ImplicitALS:
        user_items, interactions = prepared
        self.user_has_train_ = np.diff(user_items.indptr) > 0
        self.popularity_ = interactions.by_item.row_counts().astype(np.float32)
        self.item_is_cold_ = self.popularity_ == 0
        iterations = self.iterations
        if self.early_stopping:
            fit_rows, val_rows = _carve_validation(
                self.train_.ratings, self.validation_fraction, self.seed
            )
            probe = self._model(self.iterations)
            probe.fit(
                probe.prepare_interactions(self.interactions(fit_rows)),
                validation=self.interactions(val_rows),
            )
            iterations = probe.best_iteration_
            self.validation_ndcg_ = probe.validation_ndcg_
        self.best_iteration_ = iterations
        self.model_ = self._model(iterations)  # bound first: ``on_iteration`` scores it mid-fit
        self.model_.fit(interactions, callback=on_iteration)
        return self

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float32)
        scores[:, self.item_is_cold_] = COLD_ITEM_SCORE
        return scores

    def factor_scores(self, users: np.ndarray) -> FactorScores:
        users = np.asarray(users, dtype=np.int32)
        return FactorScores(
            self.model_.user_vectors(users),
            self.model_.item_factors_,
            fixed_items=np.flatnonzero(self.item_is_cold_),  # as ``_finish``
            fixed_score=COLD_ITEM_SCORE,
            score_rows=~self.user_has_train_[users],  # scored by popularity in ``score``
            score_rows_scores=self.popularity_,
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = self.factor_scores(users).block()  # _finish(model_.score(users))
        return fill_cold_users(scores, users, self.user_has_train_, self.popularity_)

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """``p_u`` of a user unseen in fit, from its (item code, rating) rows."""
        items = np.asarray(items, dtype=np.int32)
        one_user = Ratings(
            np.zeros(len(items), dtype=np.int32),
            items,
            np.asarray(ratings, dtype=np.float32),
            None,
            1,
            self.n_items_,
        )
        row = self.interactions(one_user)
        return self.model_.fold_in(row.indices, row.data)

    def score_folded(self, vectors: np.ndarray) -> np.ndarray:
        return self._finish(self.model_.score_vectors(vectors))

    folds_in_users: ClassVar[bool] = True

    def fold_in_users(self, revealed: Ratings) -> None:
        """Solve each new user's factors against the fixed items (no refit) and store them,
        so ``score`` ranks that user like a fitted one instead of by popularity."""
        for user, items, ratings in _rows_by_user(revealed):
            self.model_.user_factors_[user] = self.fold_in(items, ratings)
            self.user_has_train_[user] = True


def _rows_by_user(ratings: Ratings):
    """(user, items, ratings) per user of ``ratings``; fold-in touches only held-out users."""
    order = np.argsort(ratings.users, kind="stable")
    users = ratings.users[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        rows = order[lo:hi]
        yield int(users[lo]), ratings.items[rows], ratings.ratings[rows]


def _carve_validation(ratings: Ratings, fraction: float, seed: int) -> tuple[Ratings, Ratings]:
    """A seeded random ``fraction`` of the train rows as validation (never test rows)."""
    rng = np.random.default_rng([seed, 0x5A15])
    is_val = rng.random(len(ratings)) < fraction
    return ratings.take(~is_val), ratings.take(is_val)


class EASE(LearnsFromInteractions):
    """Steck's EASE (``bench.models.ease``): closed-form item-item weights ``B``, scores ``X_u B``.

    Ranking only; ``X`` comes from the shared feedback policy.  One dense items x items
    matrix of ``dtype`` is alive while fitting and kept for scoring (``estimate_bytes``).
    The default ``regularization`` is the paper's ML-20M value (500), not tuned here.
    """

    name = "recbench.EASE"
    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    library = "recbench"
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    #: a closed form: the seed is never used
    stochastic: ClassVar[bool] = False
    search_space: ClassVar[dict[str, list[Any]]] = {
        "regularization": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
    }

    def __init__(
        self,
        regularization: float = 500.0,
        dtype: str = "float64",
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.regularization = regularization
        self.dtype = dtype

    def estimate_bytes(self, shape: DataShape) -> int:
        return ease.estimate_bytes(shape.n_users, shape.n_items, shape.n_ratings,
                                   np.dtype(self.dtype).itemsize)

    def prepare(self, train: TrainSet) -> Any:
        return self.interactions(train)

    def fit_prepared(self, prepared: Any) -> EASE:
        self.weights_ = ease.ease_weights(prepared, self.regularization, np.dtype(self.dtype))
        self.interactions_ = prepared.astype(self.weights_.dtype)
        self.user_has_train_ = np.diff(prepared.indptr) > 0
        self.popularity_ = item_popularity(prepared)
        self.item_is_cold_ = self.popularity_ == 0
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = np.asarray(self.interactions_[users] @ self.weights_, dtype=np.float32)
        scores[:, self.item_is_cold_] = COLD_ITEM_SCORE  # all-zero columns: rank them last
        return fill_cold_users(scores, users, self.user_has_train_, self.popularity_)


class FederatedMF(Adapter):
    """FedAvg matrix factorisation, simulated (``bench.models.federated``): every user a client
    that keeps its ratings and factor; a seeded ``fraction`` of clients per round runs
    ``local_epochs`` of SGD and uploads item updates the server averages.  Compare with
    the centralised ``recbench.ALS`` / ``surprise.SVD`` rows on the same split: the
    difference is the cost of keeping the ratings on the clients.  ``fitted_info`` gives
    the rounds and the bytes a client sends per round (sparse protocol, see the module).
    Defaults picked by hand on one ML-100k split (not tuned per suite)."""

    name = "recbench.FederatedMF"
    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    library = "recbench"
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        "fraction": [0.05, 0.1, 0.3],
        "local_epochs": [1, 5],
        "rounds": [50, 100, 200],
        "lr": [0.005, 0.01, 0.02],
    }

    def __init__(
        self,
        factors: int = 16,
        rounds: int = 100,
        fraction: float = 0.1,
        local_epochs: int = 5,
        lr: float = 0.01,
        reg: float = 0.05,
        reg_bias: float = 0.02,
        server_lr: float = 1.0,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors
        self.rounds = rounds
        self.fraction = fraction
        self.local_epochs = local_epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.server_lr = server_lr
        self._model()  # fail early on bad settings

    def _model(self) -> FederatedModel:
        return FederatedModel(**self.library_params(), seed=self.seed)

    def fit_prepared(self, prepared: TrainSet) -> FederatedMF:
        self.model_ = self._model().fit(prepared.ratings)
        self.rating_scale_ = prepared.rating_scale
        return self

    def fitted_info(self) -> dict[str, Any]:
        return self.model_.traffic()

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        low, high = self.rating_scale_
        return np.clip(self.model_.predict(users, items), low, high).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        low, high = self.rating_scale_
        block = self.model_.score(users)
        return np.clip(block, low, high).astype(np.float32)
