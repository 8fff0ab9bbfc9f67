"""``synthetic:``: seeded interactions with latent structure (topics mixed with popularity).

Which items a user rates depends on who the user is, not on popularity alone, so a
collaborative model has something to learn (``bench.data.synthetic.popularity``'s popularity-only
generator, kept as ``synthetic-popularity:`` for speed tests, has nothing).  The model,
every parameter with its meaning (``synthetic:users=N,items=M,ratings=R,seed=S,key=value``):

* **items**: the k-th most popular of n items has the popularity weight
  ``w = exp(-popularity_spread * (k / n) ** popularity_curve)`` (ranks shuffled over the
  item codes; ``bench.data.synthetic.engine.stretched``): the most popular weighs ``e **
  popularity_spread`` times the least, and a ``popularity_curve`` below 1 makes a steep head
  and a long flat tail.  Each item belongs to 1-3 of ``n_topics`` topics (1 + Binomial(2,
  ``topic_spread``) memberships; topic sizes skewed like genres, weight ~ 1/rank^0.8).  The
  topics are the items' side features (``genre=G00``, ...), so genres carry signal.  A topic
  draws its items in proportion to ``w`` (split equally over an item's topics); component 0
  draws from the whole catalogue by ``w``.
* **users**: the k-th most active of n users gets a share ``exp(-activity_spread * (k / n)
  ** activity_curve)`` of the ratings, at least ``min_user_ratings`` and at most
  ``max_user_fraction`` of the catalogue (the total is exactly ``ratings``).  A user's
  tastes are a mixture over the popularity component and the topics, ``theta_u ~
  Dirichlet(focus * base)``, where ``base = (popularity_mix, (1 - popularity_mix) * topic
  masses)``: ``popularity_mix`` is the average share of a user's ratings drawn by popularity
  alone, and ``focus`` how close users stay to that average (small: each user keeps to a
  few topics and is more or less mainstream; large: every user alike, i.e. popularity
  only).  Items are drawn from the mixture without repeats.
* **ratings**: latent ``b_u + b_i + affinity * log(p_u(i) / p(i)) + noise * N(0, 1)`` with
  ``b_u ~ N(0, user_bias_sd)`` and ``b_i = item_bias_sd * (popularity_rating * z(log w_i) +
  sqrt(1 - popularity_rating^2) * N(0, 1))`` (popular items rate higher; ``z``: standardised),
  where ``p_u(i)`` is the user's and ``p(i)`` the average user's chance to draw item i; cut
  into 1..5 stars with ML-100k's shares (``RATING_SHARES``): users rate higher what their
  tastes lead them to.
* **timestamps**: each user is active over a random window of a 20-year span.

The defaults are calibrated on ML-100k by ``benchmarks/calibrate_synthetic.py`` (results in
``results/synthetic_calibration.md``).  Sampling is ``bench.data.synthetic.engine``: per-user
counter-based streams (the rows depend on ``seed`` only, not on ``threads``), memory the
output plus O(users + topics x items).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.data.model import Dataset, Features
from bench.data.synthetic.engine import LatentModel, allot, sample, stretched, tables
from bench.data.synthetic.popularity import _SPAN, _T0, check_sizes, synthetic_dataset
from bench.errors import UserError

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
                 topic_spread: float, popularity_spread: float, popularity_curve: float,
                 popularity_mix: float,
                 focus: float, affinity: float, noise: float, user_bias_sd: float,
                 item_bias_sd: float, popularity_rating: float
                 ) -> tuple[LatentModel, sp.csr_matrix]:
    """The parametric model (module docstring) and the item x topic memberships."""
    weights = stretched(n_items, popularity_spread, popularity_curve, rng)
    member = _topics(rng, n_items, n_topics, topic_spread)
    topic_w = (member.multiply(weights[:, None])).T.tocsr()  # topic x item weights
    comp = np.zeros((n_topics + 1, n_items))
    comp[0] = weights
    comp[1:] = topic_w.toarray()
    mass = comp[1:].sum(axis=1)
    base = np.concatenate([[popularity_mix], (1.0 - popularity_mix) * mass / mass.sum()])
    cdf, prob, pbar = tables(comp, base)
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
        cdf=cdf, prob=prob, pbar=pbar,
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
    n_topics: int = 57,
    topic_spread: float = 0.3,
    popularity_spread: float = 8.5,
    popularity_curve: float = 0.7,
    popularity_mix: float = 0.15,
    focus: float = 2.34,
    activity_spread: float = 3.27,
    activity_curve: float = 0.72,
    min_user_ratings: int = 1,
    max_user_fraction: float = 0.5,
    affinity: float = 0.125,
    noise: float = 1.0,
    user_bias_sd: float = 0.025,
    item_bias_sd: float = 0.85,
    popularity_rating: float = 0.6,
    threads: int = 1,
    name: str | None = None,
) -> Dataset:
    """A seeded ``Dataset`` with latent structure (see the module docstring)."""
    cap = check_sizes(n_users, n_items, n_ratings, max_user_fraction)
    if n_topics < 1:
        raise UserError(f"synthetic: n_topics={n_topics} must be at least 1")
    if not (0.0 <= popularity_mix <= 1.0 and 0.0 <= topic_spread <= 1.0):
        raise UserError("synthetic: popularity_mix and topic_spread must be within 0..1")
    if not (focus > 0 and min(popularity_spread, activity_spread, noise) >= 0
            and min(popularity_curve, activity_curve) > 0):
        raise UserError("synthetic: focus and the curves must be > 0, the spreads and noise "
                        ">= 0")
    floor = max(1, min(min_user_ratings, cap, n_ratings // n_users))
    rng = np.random.default_rng(seed)
    counts = allot(stretched(n_users, activity_spread, activity_curve, rng), n_ratings, floor,
                   cap)
    structure = dict(n_topics=n_topics, topic_spread=topic_spread,
                     popularity_spread=popularity_spread, popularity_curve=popularity_curve,
                     popularity_mix=popularity_mix,
                     focus=focus, affinity=affinity, noise=noise, user_bias_sd=user_bias_sd,
                     item_bias_sd=item_bias_sd, popularity_rating=popularity_rating)
    model, member = latent_model(rng, n_users, n_items, **structure)
    stream = int(rng.integers(0, 2**62))
    users, items, ratings, timestamps = sample(model, counts, stream, threads)
    genres = member.astype(np.float32)
    genres.data[:] = 1.0
    params = {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings, "seed": seed,
              **structure, "activity_spread": activity_spread,
              "activity_curve": activity_curve, "min_user_ratings": floor,
              "max_user_fraction": max_user_fraction}
    ds_name = name or f"synthetic:users={n_users},items={n_items},ratings={n_ratings},seed={seed}"
    names = tuple(f"genre=G{g:02d}" for g in range(n_topics))
    return synthetic_dataset(ds_name, (users, items, ratings, timestamps), n_users, n_items,
                             source="bench.data.synthetic.latent.generate", params=params,
                             item_features=Features(genres, names))
