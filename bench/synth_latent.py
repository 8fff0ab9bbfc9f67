"""``synthetic:``: seeded interactions with latent structure (topics mixed with popularity).

Which items a user rates depends on who the user is, not on popularity alone, so a
collaborative model has something to learn (``bench.synthetic``'s popularity-only
generator, kept as ``synthetic-popularity:`` for speed tests, has nothing).  The model,
every parameter with its meaning (``synthetic:users=N,items=M,ratings=R,seed=S,key=value``):

* **items**: each item has a popularity weight ``w_i = exp(popularity_sigma * N(0, 1))``
  (log-normal) and belongs to 1-3 of ``n_topics`` topics (1 + Binomial(2, ``topic_spread``)
  memberships; topic sizes skewed like genres, weight ~ 1/rank^0.8).  The topics are the
  items' side features (``genre=G00``, ...), so genres carry signal.  A topic draws its
  items in proportion to ``w_i`` (split equally over an item's topics); component 0 draws
  from the whole catalogue by ``w_i``.
* **users**: the number of ratings per user is heavy-tailed (log-normal weights with
  ``activity_sigma``, at least ``min_user_ratings``, at most ``max_user_fraction`` of the
  catalogue; ``bench.synthetic._user_counts``).  A user's tastes are a mixture over the
  popularity component and the topics, ``theta_u ~ Dirichlet(focus * base)``, where
  ``base = (popularity_mix, (1 - popularity_mix) * topic masses)``: ``popularity_mix`` is the
  average share of a user's ratings drawn by popularity alone, and ``focus`` how close users
  stay to that average (small: each user keeps to a few topics and is more or less
  mainstream; large: every user alike, i.e. popularity only).
* **ratings**: latent ``b_u + b_i + affinity * log(p_u(i) / p(i)) + noise * N(0, 1)`` with
  ``b_u ~ N(0, user_bias_sd)`` and ``b_i = item_bias_sd * (popularity_rating * z(log w_i) +
  sqrt(1 - popularity_rating^2) * N(0, 1))`` (popular items rate higher), cut into 1..5 stars
  with ML-100k's shares (``RATING_SHARES``): users rate higher what their tastes lead them to.
* **timestamps**: each user is active over a random window of a 20-year span.

The defaults are calibrated on ML-100k by ``benchmarks/calibrate_synthetic.py`` (results in
``results/synthetic_calibration.md``).  Sampling is ``bench.synth_engine``: per-user
counter-based streams (the rows depend on ``seed`` only, not on ``threads``), memory the
output plus O(users + topics x items).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.data import Dataset, Features, Ratings
from bench.errors import UserError
from bench.synth_engine import LatentModel, cumulative, sample
from bench.synthetic import _SPAN, _T0, _user_counts

#: ML-100k's share of 1, 2, 3, 4 and 5 stars (five aggregate numbers of the real data)
RATING_SHARES = np.array([0.0611, 0.1137, 0.27145, 0.34174, 0.21201])
STARS = np.arange(1.0, 6.0)


def _topics(rng: np.random.Generator, n_items: int, n_topics: int, spread: float
            ) -> sp.csr_matrix:
    """Item x topic memberships, 1-3 topics per item, each row summing to 1."""
    per_item = 1 + rng.binomial(2, spread, n_items)
    rows = np.repeat(np.arange(n_items), per_item)
    weight = 1.0 / np.arange(1, n_topics + 1) ** 0.8
    cols = rng.choice(n_topics, size=len(rows), p=weight / weight.sum())
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, n_topics))
    m.sum_duplicates()
    m.data[:] = 1.0
    m = sp.csr_matrix(sp.diags(1.0 / np.maximum(m.getnnz(axis=1), 1)) @ m)
    m.sort_indices()
    return m


def latent_model(rng: np.random.Generator, n_users: int, n_items: int, *, n_topics: int,
                 topic_spread: float, popularity_sigma: float, popularity_mix: float,
                 focus: float, affinity: float, noise: float, user_bias_sd: float,
                 item_bias_sd: float, popularity_rating: float
                 ) -> tuple[LatentModel, sp.csr_matrix]:
    """The parametric model (module docstring) and the item x topic memberships."""
    weights = np.exp(popularity_sigma * rng.standard_normal(n_items))
    member = _topics(rng, n_items, n_topics, topic_spread)
    topic_w = (member.multiply(weights[:, None])).T.tocsr()  # topic x item weights
    comp = np.zeros((n_topics + 1, n_items))
    comp[0] = weights
    comp[1:] = topic_w.toarray()
    mass = comp[1:].sum(axis=1)
    base = np.concatenate([[popularity_mix], (1.0 - popularity_mix) * mass / mass.sum()])
    cdf = cumulative(comp)
    prob = (comp / np.maximum(comp.sum(axis=1, keepdims=True), 1e-300)).T
    pbar = prob @ base
    log_w = np.log(weights)
    pop_z = (log_w - log_w.mean()) / (log_w.std() or 1.0)
    rho = float(np.clip(popularity_rating, -1.0, 1.0))
    item_bias = item_bias_sd * (rho * pop_z + np.sqrt(1 - rho**2) * rng.standard_normal(n_items))
    user_bias = user_bias_sd * rng.standard_normal(n_users)
    t_start = _T0 + rng.uniform(0.0, 0.9 * _SPAN, n_users)
    t_span = np.minimum(np.exp(rng.normal(np.log(200 * 86_400.0), 1.5, n_users)),
                        _T0 + _SPAN - t_start)
    model = LatentModel(
        parent=np.zeros(n_users, dtype=np.int32), base=base[None, :], kappa=focus,
        cdf=cdf, prob=np.ascontiguousarray(prob, dtype=np.float32), pbar=pbar,
        user_bias=user_bias, item_bias=item_bias, affinity=affinity, noise=noise,
        levels=STARS, shares=RATING_SHARES, t_start=t_start, t_span=t_span,
    )
    return model, member


def generate(
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    *,
    n_topics: int = 18,
    topic_spread: float = 0.35,
    popularity_sigma: float = 1.6,
    popularity_mix: float = 0.3,
    focus: float = 2.0,
    activity_sigma: float = 1.0,
    min_user_ratings: int | None = None,
    max_user_fraction: float = 0.5,
    affinity: float = 1.0,
    noise: float = 1.0,
    user_bias_sd: float = 0.5,
    item_bias_sd: float = 0.6,
    popularity_rating: float = 0.5,
    threads: int = 1,
    name: str | None = None,
) -> Dataset:
    """A seeded ``Dataset`` with latent structure (see the module docstring)."""
    if n_users < 1 or n_items < 1 or n_ratings < 1:
        raise UserError("synthetic: users, items and ratings must all be at least 1")
    if n_topics < 1:
        raise UserError(f"synthetic: n_topics={n_topics} must be at least 1")
    if not (0.0 <= popularity_mix <= 1.0 and 0.0 <= topic_spread <= 1.0):
        raise UserError("synthetic: popularity_mix and topic_spread must be within 0..1")
    if not (focus > 0 and popularity_sigma >= 0 and noise >= 0):
        raise UserError("synthetic: focus must be > 0, popularity_sigma and noise >= 0")
    cap = max(1, int(n_items * max_user_fraction))
    if n_ratings > n_users * cap:
        raise UserError(
            f"synthetic: {n_ratings} ratings do not fit {n_users} users x {cap} items each "
            f"(max_user_fraction={max_user_fraction}); lower ratings or raise users/items"
        )
    if n_ratings < n_users:
        raise UserError(f"synthetic: {n_ratings} ratings for {n_users} users: need >= 1 each")
    floor = (min_user_ratings if min_user_ratings is not None
             else max(1, min(20, n_ratings // n_users // 3)))
    floor = min(floor, cap, n_ratings // n_users)
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, n_users, n_ratings, cap, floor, activity_sigma)
    structure = dict(n_topics=n_topics, topic_spread=topic_spread,
                     popularity_sigma=popularity_sigma, popularity_mix=popularity_mix,
                     focus=focus, affinity=affinity, noise=noise, user_bias_sd=user_bias_sd,
                     item_bias_sd=item_bias_sd, popularity_rating=popularity_rating)
    model, member = latent_model(rng, n_users, n_items, **structure)
    stream = int(rng.integers(0, 2**62))
    users, items, ratings, timestamps = sample(model, counts, stream, threads)
    genres = member.astype(np.float32)
    genres.data[:] = 1.0
    params = {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings, "seed": seed,
              **structure, "activity_sigma": activity_sigma, "min_user_ratings": floor,
              "max_user_fraction": max_user_fraction}
    ds_name = name or f"synthetic:users={n_users},items={n_items},ratings={n_ratings},seed={seed}"
    return Dataset(
        name=ds_name,
        ratings=Ratings(users, items, ratings, timestamps, n_users, n_items),
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
        rating_scale=(1.0, 5.0),
        item_features=Features(genres, tuple(f"genre=G{g:02d}" for g in range(n_topics))),
        meta={"dataset": ds_name, "source": "bench.synth_latent.generate",
              "source_kind": "synthetic", "params": params, "checksum": None,
              "duplicates_dropped": 0},
    )
