"""Seeded synthetic ratings shaped like MovieLens, scaling to ML-32M size in bounded memory.

* item popularity: Zipf-like, p(rank r) ~ r^-a, ranks shuffled over item codes;
* user activity: heavy-tailed (log-normal) counts with a floor, capped at a fraction of
  the catalogue; every user has at least one rating;
* unique (user, item) pairs: each user samples items by popularity without replacement;
* ratings: mu + b_u + b_i + p_u . q_i + noise, rounded and clipped to 1..5, where item
  vectors lean on their genres (so genre side features carry signal);
* timestamps: each user is active over a random window of a 20-year span;
* item side features: 1-3 genres per item, one-hot ("genre=G07").

Rows are written straight into the output arrays user by user (in parallel chunks of
users, each with its own marker array), so memory is the output plus O(users + items);
no user x item matrix exists.  Every user draws from its own counter-based random stream,
so the result depends on ``seed`` only, not on the number of threads.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from bench.data.model import Dataset, Features, Ratings
from bench.errors import UserError
from bench.execution.threads import limited

_T0 = 946_684_800  # 2000-01-01, start of the synthetic time window
_SPAN = 20 * 365 * 86_400
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a well-mixed 64-bit output from a counter."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _uniform(state: np.uint64) -> tuple[np.uint64, float]:
    state = state + np.uint64(0x9E3779B97F4A7C15)
    return state, float(_mix(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _normal(state: np.uint64) -> tuple[np.uint64, float]:
    state, u1 = _uniform(state)
    state, u2 = _uniform(state)
    return state, np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)


@njit(cache=True)
def _sample_users(
    seed: np.uint64,
    offsets: np.ndarray,  # int64[n_users + 1]: user u owns rows offsets[u]:offsets[u+1]
    cdf: np.ndarray,  # float64[n_items]: cumulative popularity by rank
    item_of_rank: np.ndarray,  # int32[n_items]
    lo: int,
    hi: int,
    out_users: np.ndarray,
    out_items: np.ndarray,
) -> None:
    """Distinct items for users lo..hi-1, drawn by popularity; each slice sorted by item."""
    n_items = len(cdf)
    marker = np.zeros(n_items, dtype=np.int32)  # marker[i] == u + 1: u already has i
    for u in range(lo, hi):
        start = offsets[u]
        need = offsets[u + 1] - start
        state = _mix(seed ^ (np.uint64(u + 1) * _GOLDEN))
        got = 0
        attempts = 0
        limit = 64 * need + 1000
        while got < need and attempts < limit:
            attempts += 1
            state, x = _uniform(state)
            r = np.searchsorted(cdf, x * cdf[n_items - 1], side="right")
            if r >= n_items:
                r = n_items - 1
            item = item_of_rank[r]
            if marker[item] != u + 1:
                marker[item] = u + 1
                out_items[start + got] = item
                got += 1
        if got < need:  # extreme activity: take the most popular items not yet chosen
            for r in range(n_items):
                if got == need:
                    break
                item = item_of_rank[r]
                if marker[item] != u + 1:
                    marker[item] = u + 1
                    out_items[start + got] = item
                    got += 1
        out_items[start : start + need].sort()
        out_users[start : start + need] = u


@njit(cache=True)
def _rate_users(
    seed: np.uint64,
    offsets: np.ndarray,
    items: np.ndarray,
    mu: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_vec: np.ndarray,  # float32[n_users, k]
    item_vec: np.ndarray,  # float32[n_items, k]
    noise: float,
    user_start: np.ndarray,  # float64[n_users]: first active second
    user_span: np.ndarray,  # float64[n_users]: active seconds
    lo: int,
    hi: int,
    out_ratings: np.ndarray,
    out_ts: np.ndarray,
) -> None:
    """Rounded latent-factor ratings and timestamps within each user's active window."""
    k = user_vec.shape[1]
    for u in range(lo, hi):
        state = _mix(seed ^ (np.uint64(u + 1) * _GOLDEN))
        for j in range(offsets[u], offsets[u + 1]):
            i = items[j]
            dot = 0.0
            for f in range(k):
                dot += user_vec[u, f] * item_vec[i, f]
            state, eps = _normal(state)
            value = np.floor(mu + user_bias[u] + item_bias[i] + dot + noise * eps + 0.5)
            out_ratings[j] = min(5.0, max(1.0, value))
            state, t = _uniform(state)
            out_ts[j] = np.int64(user_start[u] + t * user_span[u])


# Parallel drivers: chunks of users, each chunk one call of the serial kernel.  With one
# thread the serial kernels are called directly (they also load faster from the cache).
@njit(cache=True, parallel=True)
def _sample_parallel(seed, offsets, cdf, item_of_rank, n_chunks, out_users, out_items):
    n_users = len(offsets) - 1
    for c in prange(n_chunks):
        lo = c * n_users // n_chunks
        hi = (c + 1) * n_users // n_chunks
        _sample_users(seed, offsets, cdf, item_of_rank, lo, hi, out_users, out_items)


@njit(cache=True, parallel=True)
def _rate_parallel(seed, offsets, items, mu, ub, ib, uv, iv, noise, start, span, n_chunks, r, ts):
    n_users = len(offsets) - 1
    for c in prange(n_chunks):
        lo = c * n_users // n_chunks
        hi = (c + 1) * n_users // n_chunks
        _rate_users(seed, offsets, items, mu, ub, ib, uv, iv, noise, start, span, lo, hi, r, ts)


def _user_counts(
    rng: np.random.Generator, n_users: int, n_ratings: int, cap: int, floor: int, sigma: float
) -> np.ndarray:
    """Heavy-tailed per-user counts, each in [floor, cap], summing exactly to n_ratings."""
    weights = rng.lognormal(0.0, sigma, n_users)
    counts = np.full(n_users, float(floor))
    free = np.ones(n_users, dtype=bool)
    for _ in range(100):  # water-filling: share by weight, cap, re-share the excess
        remaining = n_ratings - counts[~free].sum() - floor * free.sum()
        share = counts.copy()
        share[free] = floor + remaining * weights[free] / weights[free].sum()
        over = free & (share > cap)
        if not over.any():
            counts = share
            break
        counts[over] = cap
        free &= ~over
    whole = np.floor(counts).astype(np.int64)
    short = int(n_ratings - whole.sum())
    if short > 0:  # hand the rounding remainder to the largest fractions with room
        frac = np.where(whole < cap, counts - whole, -1.0)
        whole[np.argsort(-frac, kind="stable")[:short]] += 1
    return whole


def _genres(
    rng: np.random.Generator, n_items: int, n_genres: int
) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    per_item = 1 + rng.binomial(2, 0.35, n_items)
    rows = np.repeat(np.arange(n_items), per_item)
    weight = 1.0 / np.arange(1, n_genres + 1) ** 0.8
    cols = rng.choice(n_genres, size=len(rows), p=weight / weight.sum())
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_items, n_genres)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m, tuple(f"genre=G{g:02d}" for g in range(n_genres))


def check_sizes(n_users: int, n_items: int, n_ratings: int, max_user_fraction: float) -> int:
    """The most items one user may rate; ``UserError`` for sizes no rows can fill."""
    if n_users < 1 or n_items < 1 or n_ratings < 1:
        raise UserError("synthetic: users, items and ratings must all be at least 1")
    cap = max(1, int(n_items * max_user_fraction))
    if n_ratings > n_users * cap:
        raise UserError(
            f"synthetic: {n_ratings} ratings do not fit {n_users} users x {cap} items each "
            f"(max_user_fraction={max_user_fraction}); lower ratings or raise users/items"
        )
    if n_ratings < n_users:
        raise UserError(f"synthetic: {n_ratings} ratings for {n_users} users: need >= 1 each")
    return cap


def synthetic_dataset(name: str, rows: tuple, n_users: int, n_items: int, *, source: str,
                      params: dict, item_features: Features | None = None,
                      rating_scale: tuple[float, float] = (1.0, 5.0),
                      value_kind: str = "rating") -> Dataset:
    """A generated ``Dataset``: ``rows`` = (users, items, ratings, timestamps), ids = codes."""
    return Dataset(
        name=name,
        ratings=Ratings(*rows, n_users, n_items),
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
        rating_scale=rating_scale,
        item_features=item_features,
        meta={"dataset": name, "source": source, "source_kind": "synthetic", "params": params,
              "checksum": None, "duplicates_dropped": 0},
        value_kind=value_kind,
    )


def generate(
    n_users: int,
    n_items: int,
    n_ratings: int,
    seed: int = 0,
    *,
    n_factors: int = 8,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.0,
    min_user_ratings: int | None = None,
    max_user_fraction: float = 0.5,
    noise: float = 0.7,
    mean_rating: float = 3.53,
    n_genres: int = 18,
    threads: int = 1,
    name: str | None = None,
) -> Dataset:
    """A seeded synthetic ``Dataset`` (see the module docstring for the model)."""
    cap = check_sizes(n_users, n_items, n_ratings, max_user_fraction)
    floor = (
        min_user_ratings
        if min_user_ratings is not None
        else max(1, min(20, n_ratings // n_users // 3))
    )
    floor = min(floor, cap, n_ratings // n_users)
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, n_users, n_ratings, cap, floor, activity_sigma)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])

    popularity = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** popularity_exponent
    cdf = np.cumsum(popularity)
    item_of_rank = rng.permutation(n_items).astype(np.int32)
    rank_of_item = np.empty(n_items, dtype=np.int64)
    rank_of_item[item_of_rank] = np.arange(n_items)

    genre_matrix, genre_names = _genres(rng, n_items, n_genres)
    k = n_factors
    scale = np.sqrt(0.5 / max(k, 1)) ** 0.5  # p.q has variance about 0.5
    genre_vec = rng.normal(0.0, 1.0, (n_genres, k))
    per_item = np.maximum(np.asarray(genre_matrix.sum(axis=1)).ravel(), 1.0)
    item_vec = (genre_matrix @ genre_vec) / per_item[:, None]
    item_vec = scale * (0.7 * item_vec + 0.7 * rng.normal(0.0, 1.0, (n_items, k)))
    user_vec = scale * rng.normal(0.0, 1.0, (n_users, k))
    log_pop = np.log(popularity[rank_of_item])
    pop_z = (log_pop - log_pop.mean()) / (log_pop.std() or 1.0)
    item_bias = 0.1 * pop_z + rng.normal(0.0, 0.35, n_items)  # popular items rate higher
    user_bias = rng.normal(0.0, 0.35, n_users)
    user_start = _T0 + rng.uniform(0.0, 0.9 * _SPAN, n_users)
    user_span = np.minimum(
        np.exp(rng.normal(np.log(200 * 86_400.0), 1.5, n_users)), _T0 + _SPAN - user_start
    )
    sample_seed, rate_seed = (np.uint64(x) for x in rng.integers(0, 2**63 - 1, size=2))

    users = np.empty(n_ratings, dtype=np.int32)
    items = np.empty(n_ratings, dtype=np.int32)
    ratings = np.empty(n_ratings, dtype=np.float32)
    timestamps = np.empty(n_ratings, dtype=np.int64)
    rate_args = (
        rate_seed,
        offsets,
        items,
        0.0,  # mu, set below
        user_bias,
        item_bias,
        user_vec.astype(np.float32),
        item_vec.astype(np.float32),
        noise,
        user_start,
        user_span,
    )
    if threads <= 1:
        _sample_users(sample_seed, offsets, cdf, item_of_rank, 0, n_users, users, items)
    else:
        with limited(threads, blas=False):
            n_chunks = min(n_users, 8 * threads)
            _sample_parallel(sample_seed, offsets, cdf, item_of_rank, n_chunks, users, items)
    # Centre the mean rating on ``mean_rating`` given the rows actually drawn.
    item_rows = np.bincount(items, minlength=n_items)
    mu = float(mean_rating - (item_rows @ item_bias + counts @ user_bias) / n_ratings)
    rate_args = (*rate_args[:3], mu, *rate_args[4:])
    if threads <= 1:
        _rate_users(*rate_args, 0, n_users, ratings, timestamps)
    else:
        with limited(threads, blas=False):
            _rate_parallel(*rate_args, min(n_users, 8 * threads), ratings, timestamps)
    params = {
        "n_users": n_users,
        "n_items": n_items,
        "n_ratings": n_ratings,
        "seed": seed,
        "n_factors": n_factors,
        "popularity_exponent": popularity_exponent,
        "activity_sigma": activity_sigma,
        "min_user_ratings": floor,
        "max_user_fraction": max_user_fraction,
        "noise": noise,
        "mean_rating": mean_rating,
        "n_genres": n_genres,
    }
    ds_name = name or (f"synthetic-popularity:users={n_users},items={n_items},"
                       f"ratings={n_ratings},seed={seed}")
    return synthetic_dataset(ds_name, (users, items, ratings, timestamps), n_users, n_items,
                             source="bench.data.synthetic.generate", params=params,
                             item_features=Features(genre_matrix, genre_names))


_INT_PARAMS = ("n_users", "n_items", "n_ratings", "seed", "n_factors", "n_genres", "threads",
               "min_user_ratings")


def generate_from_params(params: dict[str, str], spec: str, generator: Any = None) -> Dataset:
    """``generator`` (default: this module's ``generate``) from the text values of a
    ``synthetic:key=value,...`` name; integer parameters are those whose default is one."""
    generator = generator or generate
    signature = inspect.signature(generator).parameters
    accepted = [p for p in signature if p != "name"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UserError(
            f"{spec!r}: unknown parameter(s) {', '.join(unknown)}; accepted: users, items, "
            f"ratings, {', '.join(accepted[3:])}"
        )
    missing = [p for p in ("n_users", "n_items", "n_ratings") if p not in params]
    if missing:
        raise UserError(
            f"{spec!r}: missing {', '.join(p[2:] for p in missing)} "
            "(e.g. synthetic:users=1000,items=500,ratings=20000,seed=0)"
        )
    kwargs: dict[str, Any] = {}
    for key, text in params.items():
        default = signature[key].default
        try:
            if key in _INT_PARAMS or (isinstance(default, int) and not isinstance(default, bool)):
                value = float(text.replace("_", ""))
                if value != int(value):
                    raise ValueError
                kwargs[key] = int(value)
            else:
                kwargs[key] = float(text)
        except ValueError:
            raise UserError(f"{spec!r}: {key}={text!r} is not a number") from None
    return generator(**kwargs, name=spec)
