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
* ``factor_scores(users)`` -> ``bench.evaluation.ranking.FactorScores`` or ``None`` (the default),
  optional: scores that are ``user_vectors @ item_vectors.T`` (+ an item bias) described
  as those factors, so ranking scores and selects an item chunk at a time instead of
  materialising the user x item block.  An adapter that offers it builds ``score`` on
  ``FactorScores.block`` (then both give bit for bit the same scores).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from bench.data.feedback import FeedbackPolicy, fill_cold_users, item_popularity
from bench.data.model import Ratings, TrainSet

if TYPE_CHECKING:
    from bench.evaluation.ranking import FactorScores
    from bench.execution.admission import DataShape


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
    #: reads ``TrainSet.item_features`` / ``user_features`` (a model that does so only under
    #: some parameters says so per instance: ``reads_side_information``)
    uses_side_features: ClassVar[bool] = False
    #: who chose the default parameters: ``"library"`` (the wrapped library's own defaults)
    #: or ``"recbench"`` (ours: in-house models, or a library without such a model)
    defaults_by: ClassVar[str] = "library"
    #: with ``defaults_by = "library"``: parameters whose default is recbench's choice, not
    #: the library's (e.g. LightFM's ``fit(epochs=1)`` -> ``epochs = 30``)
    recbench_defaults: ClassVar[tuple[str, ...]] = ()
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
    #: the adapter this one is a preset of (``bench.execution.registry.Preset``), or ""
    preset_of: ClassVar[str] = ""
    #: trains on a cluster when a run names one (``use_cluster``; ``spark.*``); others run
    #: in the trial's process whatever the run says
    runs_on_cluster: ClassVar[bool] = False

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

    def reads_side_information(self) -> bool:
        """Whether this model, with its parameters, reads side information (genres,
        demographics); recorded per trial (``side_information``) and marked in the tables."""
        return bool(self.uses_side_features)

    def library_params(self, *harness_only: str) -> dict[str, Any]:
        """Parameters to pass on to the wrapped library: all but seed, threads and
        ``harness_only`` (for adapters whose other parameters are the library's own)."""
        skip = {"seed", "threads", *harness_only}
        return {k: v for k, v in self.get_params().items() if k not in skip}

    def use_cluster(self, cluster: dict[str, str]) -> None:
        """Train on ``cluster`` (``TrialSpec.cluster``, e.g. ``{"spark_master": ...}``)
        instead of in this process; adapters that cannot (``runs_on_cluster`` False) ignore
        it."""

    def cluster_info(self) -> dict[str, Any]:
        """What ``use_cluster`` ran on (the record's ``env.cluster``); JSON-serialisable."""
        return {}

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

    def estimate_bytes(self, shape: DataShape) -> int | None:
        """Peak bytes the model needs on train data of ``shape`` beyond the harness's own
        structures (see ``bench.execution.admission``); None: no more than a few copies of the train
        set.  Admission control skips a trial whose estimate exceeds the memory limit."""
        return None

    def fitted_info(self) -> dict[str, Any]:
        """What the fit chose itself (e.g. ``best_iteration`` under early stopping); stored
        as the record's ``fitted`` field when not empty.  JSON-serialisable values only."""
        return {}

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

    def shared_scores(self) -> np.ndarray | None:
        """The one score vector of every user, when ``score`` gives all users the same
        scores (e.g. popularity), else ``None`` (the default): ranking then orders the
        catalogue once instead of scoring users x items."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


#: The feedback policy's keyword arguments (``bench.data.feedback``) and their defaults.
FEEDBACK_PARAMS: dict[str, Any] = {
    "feedback": FeedbackPolicy.kind,
    "feedback_threshold": FeedbackPolicy.threshold,
    "feedback_alpha": FeedbackPolicy.alpha,
}


class LearnsFromInteractions(Adapter):
    """Base of ranking-only adapters that learn from interactions rather than ratings.

    The three feedback keyword arguments (``FEEDBACK_PARAMS``) are declared here once:
    every ``__init__`` a subclass defines gets them in its signature, just before
    ``seed``, so ``get_params``, the search space and records see ordinary
    hyper-parameters.  They are stored as attributes of the same names and the policy is
    validated when the adapter is built (``FeedbackPolicy``, then ``check_feedback``).
    """

    feedback: str
    feedback_threshold: float
    feedback_alpha: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            cls.__init__ = _with_feedback_params(init)  # type: ignore[method-assign]

    def feedback_policy(self) -> FeedbackPolicy:
        """The policy of this adapter's ``feedback*`` parameters."""
        return FeedbackPolicy(
            self.feedback, float(self.feedback_threshold), float(self.feedback_alpha)
        )

    def check_feedback(self, policy: FeedbackPolicy) -> None:
        """Refuse a policy the model cannot use (a ``UserError``); default: any policy."""

    def interactions(self, ratings: Ratings | TrainSet) -> sp.csr_matrix:
        """``ratings`` as interactions under this adapter's policy."""
        return ratings.interactions(self.feedback_policy())

    def library_params(self, *harness_only: str) -> dict[str, Any]:
        return super().library_params(*FEEDBACK_PARAMS, *harness_only)


class ProjectsInteractions(LearnsFromInteractions):
    """Base of ranking models whose scores are a low-rank projection of the interaction
    matrix (PureSVD, TruncatedSVD): ``user_factors_[u] @ item_factors_``, offered as
    ``factor_scores``; a user without train rows (a zero row) is ranked by popularity."""

    def prepare(self, train: TrainSet) -> sp.csr_matrix:
        return self.interactions(train)

    def keep_factors(
        self, prepared: sp.csr_matrix, user_factors: np.ndarray, item_factors: np.ndarray
    ) -> None:
        """Store the fitted (users x k) and (k x items) factors of ``prepared``."""
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors
        self.user_has_train_ = np.diff(prepared.indptr) > 0
        self.popularity_ = item_popularity(prepared)

    def factor_scores(self, users: np.ndarray) -> FactorScores:
        from bench.evaluation.ranking import FactorScores

        users = np.asarray(users, dtype=np.int32)
        return FactorScores(
            self.user_factors_[users],
            self.item_factors_.T,
            score_rows=~self.user_has_train_[users],  # scored by popularity in ``score``
            score_rows_scores=self.popularity_,
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        scores = self.factor_scores(users).block()
        return fill_cold_users(scores, users, self.user_has_train_, self.popularity_)


def _with_feedback_params(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` with the feedback parameters added to its signature before ``seed``."""
    signature = inspect.signature(init)
    if not set(FEEDBACK_PARAMS).isdisjoint(signature.parameters):
        return init  # already declares them (a preset of such an adapter, see registry)
    own = list(signature.parameters.values())
    at = next((n for n, p in enumerate(own) if p.name == "seed"), len(own))
    added = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
        for name, default in FEEDBACK_PARAMS.items()
    ]
    extended = signature.replace(parameters=[*own[:at], *added, *own[at:]])

    @functools.wraps(init)
    def __init__(self: LearnsFromInteractions, *args: Any, **kwargs: Any) -> None:
        arguments = extended.bind(self, *args, **kwargs)
        arguments.apply_defaults()
        given = dict(arguments.arguments)
        del given["self"]
        feedback = {name: given.pop(name) for name in FEEDBACK_PARAMS}
        init(self, **given)
        # Set after ``init``: a parent's wrapped ``__init__`` called from it sets defaults.
        for name, value in feedback.items():
            setattr(self, name, value)
        self.check_feedback(self.feedback_policy())  # fail early on a bad policy

    __init__.__signature__ = extended  # type: ignore[attr-defined]
    return __init__
