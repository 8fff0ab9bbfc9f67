"""Reference baselines every library must beat, fitted on the train split only.

Computing item or user means on all data (test included) is a common protocol error, a
leak of test into every model's baseline: these adapters only ever see the ``TrainSet``
handed to ``fit`` (docs/index.md: "baselines are fitted on train only").
Users / items with no train rows fall back to the global train mean (rating models) or
score 0 (Popularity).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.adapter import Adapter
from bench.data.model import TrainSet
from bench.kernels.pair_random import pair_uniform_block


def _safe_codes(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes clamped into range, mask of codes inside the catalogue)."""
    codes = np.asarray(codes, dtype=np.int64)
    inside = (codes >= 0) & (codes < n)
    return np.where(inside, codes, 0), inside


def _group_means(
    keys: np.ndarray, ratings: np.ndarray, n: int, fallback: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean rating per key (fallback where a key has no rows) and the row counts."""
    counts = np.bincount(keys, minlength=n)
    sums = np.bincount(keys, weights=ratings, minlength=n)
    means = np.full(n, fallback, dtype=np.float64)
    np.divide(sums, counts, out=means, where=counts > 0)
    return means, counts


class RatingBaseline(Adapter):
    """A rating predictor: per-user and per-item float64 terms added to a constant."""

    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    library: ClassVar[str] = "recbench"
    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = True

    def fit_prepared(self, prepared: TrainSet) -> RatingBaseline:
        r = prepared.ratings
        self.global_mean_ = float(np.mean(r.ratings, dtype=np.float64)) if len(r) else 0.0
        self.user_term_ = np.zeros(r.n_users)
        self.item_term_ = np.zeros(r.n_items)
        self.rating_scale_ = prepared.rating_scale
        self.fit_terms(prepared)
        return self

    def fit_terms(self, train: TrainSet) -> None:
        """Set ``user_term_`` / ``item_term_`` (zero for anything without train rows)."""

    def finish(self, est: np.ndarray) -> np.ndarray:
        return est.astype(np.float32)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u, u_in = _safe_codes(users, len(self.user_term_))
        i, i_in = _safe_codes(items, len(self.item_term_))
        est = (
            self.global_mean_
            + np.where(u_in, self.user_term_[u], 0.0)
            + np.where(i_in, self.item_term_[i], 0.0)
        )
        return self.finish(est)

    def score(self, users: np.ndarray) -> np.ndarray:
        u, u_in = _safe_codes(users, len(self.user_term_))
        user_part = self.global_mean_ + np.where(u_in, self.user_term_[u], 0.0)
        return self.finish(user_part[:, None] + self.item_term_[None, :])


class GlobalMean(RatingBaseline):
    """Predicts the mean train rating for every pair."""

    name: ClassVar[str] = "baseline.GlobalMean"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    ranks: ClassVar[bool] = False  # every item ties: a ranking would only show tie-breaking

    def __init__(self, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)


class UserMean(RatingBaseline):
    """Predicts the user's mean train rating (global mean for users without train rows)."""

    name: ClassVar[str] = "baseline.UserMean"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    ranks: ClassVar[bool] = False  # constant over a user's items

    def __init__(self, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)

    def fit_terms(self, train: TrainSet) -> None:
        r = train.ratings
        means, _ = _group_means(r.users, r.ratings, r.n_users, self.global_mean_)
        self.user_term_ = means - self.global_mean_


class ItemMean(RatingBaseline):
    """Predicts the item's mean train rating (global mean for items without train rows)."""

    name: ClassVar[str] = "baseline.ItemMean"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    scores_cold_users: ClassVar[bool] = True  # a cold user still gets the item ranking

    def __init__(self, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)

    def fit_terms(self, train: TrainSet) -> None:
        r = train.ratings
        means, _ = _group_means(r.items, r.ratings, r.n_items, self.global_mean_)
        self.item_term_ = means - self.global_mean_


class Bias(RatingBaseline):
    """mu + b_u + b_i with ridge-regularised biases fitted by alternating exact updates.

    Each half-step is the closed-form minimiser of the regularised squared error in one
    side given the other: b_i = sum_u (r - mu - b_u) / (reg_item + n_i), then the same for
    b_u (Koren 2010; Surprise's BaselineOnly ALS with reg_u=15, reg_i=10 uses this rule).
    """

    name: ClassVar[str] = "baseline.Bias"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    scores_cold_users: ClassVar[bool] = True  # mu + b_i
    search_space: ClassVar[dict[str, list[Any]]] = {
        "reg_user": [5.0, 15.0, 25.0],
        "reg_item": [5.0, 10.0, 25.0],
    }

    def __init__(
        self,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        n_iters: int = 10,
        clip: bool = True,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iters = n_iters
        self.clip = clip

    def fit_terms(self, train: TrainSet) -> None:
        r = train.ratings
        residual = r.ratings.astype(np.float64) - self.global_mean_
        n_u = np.bincount(r.users, minlength=r.n_users)
        n_i = np.bincount(r.items, minlength=r.n_items)
        # max(., tiny) keeps reg = 0 finite for entities without rows (their sum is 0)
        den_u = np.maximum(n_u + self.reg_user, np.finfo(np.float64).tiny)
        den_i = np.maximum(n_i + self.reg_item, np.finfo(np.float64).tiny)
        b_u = np.zeros(r.n_users)
        b_i = np.zeros(r.n_items)
        for _ in range(self.n_iters):
            b_i = np.bincount(r.items, weights=residual - b_u[r.users], minlength=r.n_items)
            b_i /= den_i
            b_u = np.bincount(r.users, weights=residual - b_i[r.items], minlength=r.n_users)
            b_u /= den_u
        self.user_term_ = b_u
        self.item_term_ = b_i

    def finish(self, est: np.ndarray) -> np.ndarray:
        if self.clip:
            est = np.clip(est, *self.rating_scale_)
        return est.astype(np.float32)


class Popularity(Adapter):
    """Ranks items by their number of train ratings; predicts no ratings."""

    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    name: ClassVar[str] = "baseline.Popularity"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    library: ClassVar[str] = "recbench"
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    scores_cold_users: ClassVar[bool] = True  # everyone gets the popularity ranking

    def __init__(self, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)

    def fit_prepared(self, prepared: TrainSet) -> Popularity:
        self.item_counts_ = prepared.ratings.item_counts().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_counts_, (len(users), len(self.item_counts_))).copy()

    def shared_scores(self) -> np.ndarray:
        return self.item_counts_


class Random(Adapter):
    """Seeded uniform random scores, one fixed draw per (user, item) pair.

    The draw is a hash of (seed, user, item), so it does not depend on how users are
    batched; the same seed gives the same ranking.
    """

    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    name: ClassVar[str] = "baseline.Random"
    library: ClassVar[str] = "recbench"
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True

    def __init__(self, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)

    def fit_prepared(self, prepared: TrainSet) -> Random:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return pair_uniform_block(self.seed, users, self.n_items_)


class Content(Adapter):
    """Content-based ranking from item side features (e.g. genres), no collaborative signal.

    Items are TF-IDF-weighted, L2-normalised feature vectors; a user's profile is the sum of
    the vectors of the items the user liked in train (rating >= ``like_threshold``, or every
    rated item when none qualifies); an item's score is its cosine with the profile.  Items
    with no train ratings are scored like any other, which is the point of the model: it
    ranks cold items.  Users with no train ratings get item popularity.
    """

    defaults_by: ClassVar[str] = "recbench"  # in-house: our defaults
    name: ClassVar[str] = "baseline.Content"
    stochastic: ClassVar[bool] = False  # no random step: the seed changes nothing
    library: ClassVar[str] = "recbench"
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True
    uses_side_features: ClassVar[bool] = True
    scores_cold_items: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {"like_threshold": [3.0, 4.0, 5.0]}

    def __init__(self, like_threshold: float = 4.0, seed: int = 0, threads: int = 1) -> None:
        super().__init__(seed=seed, threads=threads)
        self.like_threshold = like_threshold

    def fit_prepared(self, prepared: TrainSet) -> Content:
        import scipy.sparse as sp

        if prepared.item_features is None:
            raise ValueError("baseline.Content needs item side features; this dataset has none")
        features = prepared.item_features.matrix.astype(np.float32).tocsr()
        df = np.asarray((features > 0).sum(axis=0)).ravel()
        idf = np.log((1.0 + features.shape[0]) / (1.0 + df)).astype(np.float32) + 1.0
        weighted = features @ sp.diags(idf)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        self.item_vectors_ = (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted).tocsr()
        r = prepared.ratings
        liked = r.ratings >= self.like_threshold
        has_liked = np.bincount(r.users[liked], minlength=r.n_users) > 0
        use = liked | ~has_liked[r.users]  # users who liked nothing: all their items
        interactions = sp.csr_matrix(
            (np.ones(int(use.sum()), np.float32), (r.users[use], r.items[use])),
            shape=(r.n_users, r.n_items),
        )
        profiles = interactions @ self.item_vectors_
        pnorm = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
        self.profiles_ = (sp.diags(1.0 / np.maximum(pnorm, 1e-12)) @ profiles).tocsr()
        self.user_has_train_ = r.user_counts() > 0
        counts = r.item_counts().astype(np.float32)
        self.popularity_ = counts / max(float(counts.max()), 1.0)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        scores = np.asarray((self.profiles_[users] @ self.item_vectors_.T).todense(), np.float32)
        cold = ~self.user_has_train_[users]
        scores[cold] = self.popularity_
        return scores
