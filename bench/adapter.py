"""The adapter contract every library wrapper in ``adapters/`` implements.

scikit-learn style: hyper-parameters are keyword arguments of ``__init__`` and stored
unchanged as attributes of the same name; ``fit(train)`` returns ``self``.  The harness,
not the adapter, excludes train items, picks the top K, batches users and times stages.

Stages the harness times separately:

* ``prepare(train)`` converts the harness's ``TrainSet`` into the library's own structure
  (a Surprise ``Trainset``, a LightFM ``Dataset``, a CSR matrix); timed as ``prepare_seconds``.
* ``fit_prepared(prepared)`` trains; timed as ``fit_seconds``.
* ``predict(users, items)`` -> float32 rating estimates, one per pair (rating models).
* ``score(users)`` -> float32 block ``(len(users), n_items)``; higher means recommend first.
  Rating models inherit a default built on ``predict``; ranking models override it.
* ``factor_scores(users)`` -> ``bench.ranking.FactorScores`` or ``None`` (the default),
  optional: scores that are ``user_vectors @ item_vectors.T`` (+ an item bias) described
  as those factors, so ranking scores and selects an item chunk at a time instead of
  materialising the user x item block.  An adapter that offers it builds ``score`` on
  ``FactorScores.block`` (then both give bit for bit the same scores).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bench.data import Ratings, TrainSet

if TYPE_CHECKING:
    from bench.ranking import FactorScores


class Adapter:
    """Base class: subclass it in ``adapters/<library>.py`` and set ``name``."""

    #: ``<library>.<Model>``, e.g. ``surprise.SVD``; the name suites and CLI use.
    name: ClassVar[str] = ""
    #: Python distribution whose version is recorded with each trial (e.g. ``scikit-surprise``).
    library: ClassVar[str] = ""
    #: produces rating estimates (RMSE / MAE are computed)
    predicts_ratings: ClassVar[bool] = False
    #: produces a ranking (ranking metrics are computed)
    ranks: ClassVar[bool] = True
    #: reads ``TrainSet.item_features`` / ``user_features``
    uses_side_features: ClassVar[bool] = False
    #: ``predict`` / ``score`` are recbench's own vectorised code, equal to the library's
    #: ``predict`` (whose per-pair loop is far slower); the leaderboard marks those timings
    scored_by_harness: ClassVar[bool] = False
    #: results depend on ``seed`` (random initialisation or sampling): a suite runs such a
    #: model for every seed of a run, a model whose results cannot depend on it once
    stochastic: ClassVar[bool] = True
    #: trains by parallel SGD without locks (Hogwild): on more than one thread the result
    #: changes run to run; records then say ``reproducible: false``
    parallel_sgd: ClassVar[bool] = False
    #: can score a user / item with no train rows by something better than a constant
    scores_cold_users: ClassVar[bool] = False
    scores_cold_items: ClassVar[bool] = False
    #: gives factors to users absent from fit from a few of their ratings, without refitting
    #: (``fold_in_users``); other models are refitted with those ratings in train
    folds_in_users: ClassVar[bool] = False
    #: ``fit_prepared(prepared, on_iteration=callback)`` calls ``callback(i)`` after each
    #: iteration, so a convergence curve is recorded from one fit
    records_curve: ClassVar[bool] = False
    #: small hyper-parameter search space, as data: {param: [values]}
    search_space: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, seed: int = 0, threads: int = 1) -> None:
        self.seed = seed
        self.threads = threads

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        }

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self.param_names()}

    def library_params(self, *harness_only: str) -> dict[str, Any]:
        """Parameters to pass on to the wrapped library: all but seed, threads and
        ``harness_only`` (for adapters whose other parameters are the library's own)."""
        skip = {"seed", "threads", *harness_only}
        return {k: v for k, v in self.get_params().items() if k not in skip}

    # -- fitting --------------------------------------------------------------------------
    def prepare(self, train: TrainSet) -> Any:
        """Convert ``train`` into the library's own structure (default: no conversion)."""
        return train

    def fit_prepared(self, prepared: Any) -> Adapter:
        raise NotImplementedError

    def fit(self, train: TrainSet) -> Adapter:
        return self.fit_prepared(self.bind(train))

    def bind(self, train: TrainSet) -> Any:
        """Remember the catalogue and train set, then ``prepare``; the harness times this."""
        self.train_ = train
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        return self.prepare(train)

    def fold_in_users(self, revealed: Ratings) -> None:
        """Make ``score`` / ``predict`` use the ``revealed`` ratings of users unseen in fit."""
        raise NotImplementedError(f"{self.name} cannot fold in new users")

    def fitted_info(self) -> dict[str, Any]:
        """What the fit chose itself (e.g. ``best_iteration`` under early stopping); stored
        as the record's ``fitted`` field when not empty.  JSON-serialisable values only."""
        return {}

    def estimate_bytes(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """Peak bytes fitting and scoring will need on data of this size; None: unknown."""
        return None

    # -- outputs ----------------------------------------------------------------------------
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} does not predict ratings")

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores over the whole catalogue; default: the rating estimate of every item."""
        if not self.predicts_ratings:
            raise NotImplementedError(f"{self.name} does not score items")
        n_items = self.n_items_
        users = np.asarray(users, dtype=np.int32)
        u = np.repeat(users, n_items)
        i = np.tile(np.arange(n_items, dtype=np.int32), len(users))
        return self.predict(u, i).reshape(len(users), n_items)

    def factor_scores(self, users: np.ndarray) -> FactorScores | None:
        """``score(users)`` as factors (see ``FactorScores``), or ``None``: not a product.

        Rows ``score`` fills otherwise (e.g. users without train rows scored by popularity)
        are flagged in ``FactorScores.score_rows``; the harness takes them from ``score``.
        """
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
