"""Neural CF in PyTorch (CPU): thin over ``bench.models.neural``.

* ``torch.GMF``, ``torch.NCF``, ``torch.NeuMF``: He et al. 2017's three instantiations of
  neural collaborative filtering (generalised MF, the MLP tower ``torch.NCF``, and their
  fusion NeuMF), trained on implicit feedback (the shared feedback policy,
  ``bench.data.feedback``) with ``negatives`` sampled items per positive and epoch, binary
  cross-entropy, Adam.  Evaluation is the harness's full-catalogue ranking: ``score``
  returns every item's logit (GMF as factors, ``factor_scores``); users without train rows
  get the popularity ranking.
* ``torch.MLP``: a rating regressor ``mu + MLP([p_u, q_i, side features])`` on explicit
  ratings (MSE, Adam) with the dataset's user and item side features when it has them.
  Users / items without train rows get the mean of the trained embeddings, so they are
  scored by their side features.

CPU only; ``torch.set_num_threads(threads)``; seeded and deterministic for a given seed and
thread count (see ``bench.models.neural``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

try:
    import torch
except ImportError as exc:  # one line in `bench list`, saying what to install
    raise ImportError(f"{exc}: install the extra, pip install -e '.[neural]'") from exc

from bench.adapter import Adapter, LearnsFromInteractions
from bench.data.feedback import fill_cold_users, item_popularity
from bench.data.model import TrainSet
from bench.evaluation.ranking import FactorScores
from bench.models import neural


class _NCF(LearnsFromInteractions):
    """He et al.'s models; ``kind`` picks the architecture."""

    library: ClassVar[str] = "torch"
    defaults_by: ClassVar[str] = "recbench"  # torch has no such model: our defaults
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    records_curve: ClassVar[bool] = True
    kind: ClassVar[str]
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [4, 8, 16],
        "negatives": [4, 8],
        "learning_rate": [0.001, 0.003],
        "epochs": [10, 20],
    }

    def __init__(
        self,
        factors: int = 4,
        mlp_width: int = 16,
        mlp_layers: int = 2,
        negatives: int = 4,
        epochs: int = 10,
        batch_size: int = 1024,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors  # GMF's predictive factors
        # The MLP's input [p_u, q_i] (each half as wide); each of its layers halves it:
        # 16 and 2 are Microsoft Recommenders' layer_sizes [16, 8, 4].
        self.mlp_width = mlp_width
        self.mlp_layers = mlp_layers
        self.negatives = negatives
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay

    def prepare(self, train: TrainSet) -> sp.csr_matrix:
        # Binary: NCF learns "interacted or not"; confidence values only pick the positives.
        return self.interactions(train)

    def fit_prepared(
        self, prepared: sp.csr_matrix, on_iteration: Callable[[int], None] | None = None
    ) -> _NCF:
        self.user_has_train_ = np.diff(prepared.indptr) > 0
        self.popularity_ = item_popularity(prepared)
        with neural.torch_settings(self.seed, self.threads):
            self.model_ = neural.NCFNet(
                prepared.shape[0], prepared.shape[1], self.kind, self.factors,
                self.mlp_width, self.mlp_layers,
            )  # fmt: skip
            self.losses_ = neural.train(
                self.model_,
                neural.implicit_batches(prepared, self.negatives, self.batch_size),
                torch.nn.BCEWithLogitsLoss(),
                self._config(),
                on_iteration,
            )
        return self

    def _config(self) -> neural.TrainConfig:
        return neural.TrainConfig(
            self.epochs, self.batch_size, self.learning_rate, self.weight_decay,
            self.seed, self.threads,
        )  # fmt: skip

    def fitted_info(self) -> dict[str, Any]:
        return {"final_loss": round(self.losses_[-1], 6)} if self.losses_ else {}

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = neural.score_all(self.model_, users, self.n_items_, self.threads)
        return fill_cold_users(scores, users, self.user_has_train_, self.popularity_)


class GMF(_NCF):
    """Generalised matrix factorisation: ``sigmoid(h . (p_u * q_i) + b)``."""

    name = "torch.GMF"
    kind = "gmf"

    def factor_scores(self, users: np.ndarray) -> FactorScores:
        users = np.asarray(users, dtype=np.int32)
        user_side, item_side, bias = self.model_.gmf_factors()
        return FactorScores(
            user_side[users],
            item_side,
            item_bias=np.full(len(item_side), bias, dtype=np.float32),
            score_rows=~self.user_has_train_[users],  # popularity in ``score``
            score_rows_scores=self.popularity_,
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = self.factor_scores(users).block()
        return fill_cold_users(scores, users, self.user_has_train_, self.popularity_)


class NCF(_NCF):
    """He et al.'s MLP instantiation of NCF: a ReLU tower over [p_u, q_i]."""

    name = "torch.NCF"
    kind = "mlp"
    search_space: ClassVar[dict[str, list[Any]]] = {
        "mlp_width": [16, 32, 64],
        "mlp_layers": [2, 3],
        "negatives": [4, 8],
        "learning_rate": [0.001, 0.003],
        "epochs": [10, 20],
    }


class NeuMF(_NCF):
    """GMF and the MLP tower, separate embeddings, fused by one output layer (no
    pre-training, as Microsoft Recommenders' NCF runs it)."""

    name = "torch.NeuMF"
    kind = "neumf"


class MLP(Adapter):
    """Rating regressor ``mu + MLP([p_u, q_i, user features, item features])``."""

    name = "torch.MLP"
    defaults_by: ClassVar[str] = "recbench"  # torch has no such model: our defaults
    library: ClassVar[str] = "torch"
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True
    uses_side_features: ClassVar[bool] = True
    records_curve: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [8, 16, 32],
        "layers": [1, 2, 3],
        "weight_decay": [0.0, 1e-5, 1e-4],
        "epochs": [5, 10],
    }

    def __init__(
        self,
        factors: int = 16,
        layers: int = 2,
        epochs: int = 5,
        batch_size: int = 1024,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        side_features: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.factors = factors
        self.layers = layers  # each halves its input [p_u, q_i, side features]
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.side_features = side_features

    def prepare(self, train: TrainSet) -> TrainSet:
        return train

    def fit_prepared(
        self, prepared: TrainSet, on_iteration: Callable[[int], None] | None = None
    ) -> MLP:
        r = prepared.ratings
        use = self.side_features
        user_x = _dense(prepared.user_features) if use else None
        item_x = _dense(prepared.item_features) if use else None
        self.used_features_ = [name for name, x in (("user", user_x), ("item", item_x)) if x
                               is not None]  # fmt: skip
        self.rating_scale_ = prepared.rating_scale
        with neural.torch_settings(self.seed, self.threads):
            self.model_ = neural.RatingMLP(
                r.n_users, r.n_items, self.factors, self.layers,
                user_x, item_x, prepared.global_mean,
            )  # fmt: skip
            config = neural.TrainConfig(
                self.epochs, self.batch_size, self.learning_rate, self.weight_decay,
                self.seed, self.threads,
            )  # fmt: skip
            self.losses_ = neural.train(
                self.model_,
                neural.rating_batches(r.users, r.items, r.ratings, self.batch_size),
                torch.nn.MSELoss(),
                config,
                on_iteration,
            )
            # Users / items without train rows kept their random start: give them the mean
            # embedding, so their side features decide their estimates.
            _mean_fill(self.model_.user.weight, r.user_counts() == 0)
            _mean_fill(self.model_.item.weight, r.item_counts() == 0)
        return self

    def fitted_info(self) -> dict[str, Any]:
        return {"final_loss": round(self.losses_[-1], 6), "side_features": self.used_features_}

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        est = neural.predict_pairs(self.model_, users, items, self.threads)
        return np.clip(est, *self.rating_scale_)

    def score(self, users: np.ndarray) -> np.ndarray:
        # Unclipped: clipping would only add ties at the top of the scale.
        return neural.score_all(self.model_, users, self.n_items_, self.threads)


def _dense(features: Any) -> np.ndarray | None:
    return None if features is None else features.matrix.toarray().astype(np.float32)


def _mean_fill(weight: torch.Tensor, cold: np.ndarray) -> None:
    if cold.any() and (~cold).any():
        with torch.no_grad():
            cold_t = torch.from_numpy(cold)
            weight[cold_t] = weight[~cold_t].mean(0)
