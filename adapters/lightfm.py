"""LightFM adapters (``import lightfm``, from the rectools-lightfm distribution).

Used as LightFM documents it: ``LightFM(loss=...)`` then ``fit(interactions, user_features,
item_features, sample_weight, epochs, num_threads)``; the default of 30 epochs is the one its
quickstart uses.  Interactions come from the shared feedback policy (``bench.data.feedback``); with
``feedback="confidence"`` the interactions stay binary and the confidences are passed as
``sample_weight``, LightFM's way of weighting them (WARP-kOS does not accept weights).

``score`` is what ``LightFM.predict`` computes (biases plus the dot product of the user and
item representations), for every item at once from ``get_user_representations`` /
``get_item_representations``; ``predict_rank`` over the whole catalogue is slow and runs out
of memory (lightfm #110).  The harness, not the adapter, removes train items.

Each loss comes in two variants:

* ``lightfm.<LOSS>``: collaborative only (one identity feature per user and item).
* ``lightfm.<LOSS>-features``: LightFM's hybrid model, identity features plus side features
  (item genres; user age / gender / occupation).  ``normalize_features=True`` scales rows to
  sum 1 as ``lightfm.data.Dataset.build_*_features`` does by default; it is off by default
  here because it shrinks the identity weight to 1 / (1 + number of side features), which
  costs accuracy (lightfm #413; ML-100k per-user 75/25, WARP NDCG@10 0.28 normalised vs
  0.44 not).  An entity without train rows gets no identity feature: it has nothing to learn
  from (a cold user's identity is never updated, a cold item's only as a sampled negative),
  so it is represented by its side features alone; that is how cold users and items are
  scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM

from bench.adapter import LearnsFromInteractions
from bench.data.feedback import FeedbackPolicy, fill_cold_users, item_popularity
from bench.data.model import Features, TrainSet
from bench.errors import UserError


@dataclass(frozen=True)
class LightFMInput:
    """What ``LightFM.fit`` takes, built by ``prepare`` (timed as conversion)."""

    interactions: sp.coo_matrix  # float32, 1 per interaction
    sample_weight: sp.coo_matrix | None  # confidences, same entries as interactions
    user_features: sp.csr_matrix | None  # None: LightFM's implicit identity matrix
    item_features: sp.csr_matrix | None
    user_has_train: np.ndarray  # bool per user


def hybrid_features(
    has_train: np.ndarray, side: Features | None, normalize: bool = True
) -> sp.csr_matrix:
    """Identity columns for entities with train rows, then the side features; float32 CSR.

    ``normalize`` scales each row to sum 1, like ``lightfm.data.Dataset`` does by default.
    """
    n = len(has_train)
    warm = np.flatnonzero(has_train)
    identity = sp.csr_matrix(
        (np.ones(len(warm), dtype=np.float32), (warm, warm)), shape=(n, n), dtype=np.float32
    )
    blocks = [identity] if side is None else [identity, side.matrix.astype(np.float32)]
    matrix = sp.hstack(blocks, format="csr", dtype=np.float32)
    if normalize:
        row_sums = np.asarray(matrix.sum(axis=1)).ravel()
        scale = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
        matrix = sp.diags(scale.astype(np.float32)) @ matrix
    return sp.csr_matrix(matrix, dtype=np.float32)


class _LightFMAdapter(LearnsFromInteractions):
    library: ClassVar[str] = "rectools-lightfm"
    #: LightFM's fit() defaults to epochs=1
    recbench_defaults: ClassVar[tuple[str, ...]] = ("epochs",)
    parallel_sgd: ClassVar[bool] = True  # Hogwild SGD over num_threads
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    loss: ClassVar[str] = ""
    with_features: ClassVar[bool] = False
    search_space: ClassVar[dict[str, list[Any]]] = {
        "no_components": [10, 20, 40],
        "learning_rate": [0.02, 0.05],
        "epochs": [15, 30, 60],
    }

    def __init__(
        self,
        no_components: int = 10,
        learning_rate: float = 0.05,
        epochs: int = 30,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        max_sampled: int = 10,
        learning_schedule: str = "adagrad",
        normalize_features: bool = False,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.no_components = no_components
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.max_sampled = max_sampled
        self.learning_schedule = learning_schedule
        self.normalize_features = normalize_features

    def check_feedback(self, policy: FeedbackPolicy) -> None:
        if self.loss == "warp-kos" and not policy.binary:
            raise UserError(f"{self.name} cannot weight interactions: use a binary feedback")

    def _model_kwargs(self) -> dict[str, Any]:
        return {}

    def prepare(self, train: TrainSet) -> LightFMInput:
        policy = self.feedback_policy()
        weights = train.interactions(policy)
        user_has_train = np.diff(weights.indptr) > 0
        interactions = weights.tocoo()
        sample_weight = None
        if not policy.binary:
            sample_weight = interactions
            interactions = sp.coo_matrix(
                (np.ones_like(weights.data), (sample_weight.row, sample_weight.col)),
                shape=weights.shape,
            )
        user_features = item_features = None
        if self.with_features:
            item_has_train = np.diff(weights.tocsc().indptr) > 0
            user_features = hybrid_features(
                user_has_train, train.user_features, self.normalize_features
            )
            item_features = hybrid_features(
                item_has_train, train.item_features, self.normalize_features
            )
        return LightFMInput(
            interactions, sample_weight, user_features, item_features, user_has_train
        )

    def fit_prepared(self, prepared: LightFMInput) -> _LightFMAdapter:
        self.model_ = LightFM(
            no_components=self.no_components,
            loss=self.loss,
            learning_rate=self.learning_rate,
            learning_schedule=self.learning_schedule,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=self.seed,
            **self._model_kwargs(),
        )
        self.model_.fit(
            prepared.interactions,
            user_features=prepared.user_features,
            item_features=prepared.item_features,
            sample_weight=prepared.sample_weight,
            epochs=self.epochs,
            num_threads=self.threads,
        )
        self.user_has_train_ = prepared.user_has_train
        self.popularity_ = item_popularity(prepared.interactions.tocsr())
        self.user_biases_, self.user_embeddings_ = self.model_.get_user_representations(
            prepared.user_features
        )
        self.item_biases_, self.item_embeddings_ = self.model_.get_item_representations(
            prepared.item_features
        )
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        # The same sum LightFM.predict computes, for every item at once.
        scores = self.user_embeddings_[users] @ self.item_embeddings_.T
        scores += self.item_biases_[None, :]
        scores += self.user_biases_[users, None]
        scores = scores.astype(np.float32, copy=False)
        if not self.with_features:
            # Without user features, a user with no train rows has an untrained vector.
            fill_cold_users(scores, users, self.user_has_train_, self.popularity_)
        return scores


class _WithFeatures:
    uses_side_features: ClassVar[bool] = True
    scores_cold_users: ClassVar[bool] = True
    scores_cold_items: ClassVar[bool] = True
    with_features: ClassVar[bool] = True


class WARP(_LightFMAdapter):
    """Weighted approximate-rank pairwise loss: optimises the top of the list."""

    name = "lightfm.WARP"
    loss = "warp"


class BPR(_LightFMAdapter):
    name = "lightfm.BPR"
    loss = "bpr"


class Logistic(_LightFMAdapter):
    """LightFM's logistic loss; with only positive feedback it sees no negatives at all."""

    name = "lightfm.Logistic"
    loss = "logistic"


class WARPkOS(_LightFMAdapter):
    """k-th order statistic WARP: updates from the k-th positive of n sampled ones."""

    name = "lightfm.WARP-kOS"
    loss = "warp-kos"
    search_space: ClassVar[dict[str, list[Any]]] = {
        "no_components": [10, 20, 40],
        "learning_rate": [0.02, 0.05],
        "k": [3, 5],
        "epochs": [15, 30, 60],
    }

    def __init__(
        self,
        no_components: int = 10,
        learning_rate: float = 0.05,
        epochs: int = 30,
        k: int = 5,
        n: int = 10,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        max_sampled: int = 10,
        learning_schedule: str = "adagrad",
        normalize_features: bool = False,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        self.k = k
        self.n = n
        super().__init__(
            no_components=no_components,
            learning_rate=learning_rate,
            epochs=epochs,
            item_alpha=item_alpha,
            user_alpha=user_alpha,
            max_sampled=max_sampled,
            learning_schedule=learning_schedule,
            normalize_features=normalize_features,
            seed=seed,
            threads=threads,
        )

    def _model_kwargs(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n}


class WARPFeatures(_WithFeatures, WARP):
    name = "lightfm.WARP-features"
    search_space: ClassVar[dict[str, list[Any]]] = {
        **WARP.search_space,
        "normalize_features": [False, True],
    }


class BPRFeatures(_WithFeatures, BPR):
    name = "lightfm.BPR-features"
    search_space: ClassVar[dict[str, list[Any]]] = {
        **BPR.search_space,
        "normalize_features": [False, True],
    }


class LogisticFeatures(_WithFeatures, Logistic):
    name = "lightfm.Logistic-features"
    search_space: ClassVar[dict[str, list[Any]]] = {
        **Logistic.search_space,
        "normalize_features": [False, True],
    }


class WARPkOSFeatures(_WithFeatures, WARPkOS):
    name = "lightfm.WARP-kOS-features"
    search_space: ClassVar[dict[str, list[Any]]] = {
        **WARPkOS.search_space,
        "normalize_features": [False, True],
    }
