"""The sampler shared by the latent-structure generator and the synthetic twin.

A ``LatentModel`` says, for every synthetic user and item, how interactions are drawn:

* each user ``u`` has a mixture ``theta_u`` over ``C`` components, drawn once per user from
  ``Dirichlet(kappa * base[parent[u]])``; component 0 is the catalogue's popularity itself
  (so ``theta_u[0]`` is how mainstream the user is), components 1.. are topics;
* each component ``z`` is a distribution ``p(i | z)`` over the items (``cdf[z]``: its
  cumulative form, ``prob[i, z]``: the same numbers item-major);
* the user's items are drawn without replacement from ``p_u(i) = sum_z theta_u[z] p(i|z)``:
  pick a component by ``theta_u``, then an item by ``p(i|z)``; an item drawn twice is drawn
  again (after ``64 * count + 1000`` attempts the most popular items not yet taken fill the
  rest);
* a rating's latent value is ``user_bias[u] + item_bias[i] + affinity * log(p_u(i) / pbar(i))
  + noise * N(0, 1)``, where ``pbar`` is the average user's ``p(i)``: users rate higher what
  their own tastes, more than the average user's, lead them to; the latent values are then
  cut into rating levels at the quantiles that give each level its share (``levels``,
  ``shares``), so the rating histogram is the target's;
* a timestamp is uniform over the user's active window ``[t_start, t_start + t_span]``.

Nothing of size users x items exists: memory is the output plus O(users + C x items).
Every user draws from its own counter-based stream (the splitmix64 of
``bench.data.synthetic.popularity``), so the rows depend on the seed only, never on the
number of threads; rows come out sorted by (user, item), like loaded data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from bench.data.synthetic.popularity import _GOLDEN, _mix, _normal, _uniform
from bench.execution.threads import limited


@dataclass(frozen=True)
class LatentModel:
    """Everything the sampler needs (see the module docstring); arrays, no rows."""

    parent: np.ndarray  # int32[n_users]: row of ``base`` each user's mixture is drawn around
    base: np.ndarray  # float64[P, C]: Dirichlet means (rows sum to 1)
    kappa: float  # Dirichlet concentration: large = users close to their base row
    cdf: np.ndarray  # float64[C, n_items]: cumulative p(i | z), each row ending at 1
    prob: np.ndarray  # float32[n_items, C]: p(i | z), item-major (the rating pass reads it)
    pbar: np.ndarray  # float64[n_items]: the average user's p(i)
    user_bias: np.ndarray  # float64[n_users]
    item_bias: np.ndarray  # float64[n_items]
    affinity: float  # weight of log(p_u(i) / pbar(i)) in the latent rating
    noise: float  # standard deviation of the latent rating's noise
    levels: np.ndarray  # float64[L]: rating values, ascending
    shares: np.ndarray  # float64[L]: share of rows at each level
    t_start: np.ndarray | None  # float64[n_users]: first active second (None: no timestamps)
    t_span: np.ndarray | None  # float64[n_users]: active seconds

    @property
    def n_users(self) -> int:
        return len(self.parent)

    @property
    def n_items(self) -> int:
        return self.cdf.shape[1]


def allot(weights: np.ndarray, total: int, low: int, high: int) -> np.ndarray:
    """Integers within [low, high] in proportion to ``weights`` summing to ``total`` (as far
    as the bounds allow; largest remainders get the rounding)."""
    counts = np.clip(weights * total / weights.sum(), low, high)
    for _ in range(50):  # re-share what the bounds cut off
        free = (counts > low) & (counts < high) if counts.sum() > total else counts < high
        gap = total - counts.sum()
        if abs(gap) < 0.5 or not free.any():
            break
        counts[free] = np.clip(counts[free] * (1 + gap / counts[free].sum()), low, high)
    whole = np.floor(counts).astype(np.int64)
    short = int(total - whole.sum())
    if short > 0:
        frac = np.where(whole < high, counts - whole, -1.0)
        whole[np.argsort(-frac, kind="stable")[:short]] += 1
    return whole


def stretched(n: int, spread: float, curve: float, rng: np.random.Generator) -> np.ndarray:
    """Weights of n entities in shuffled order, the k-th largest ``exp(-spread *
    (k / n) ** curve)``: the largest is ``e ** spread`` times the smallest; ``curve`` < 1
    makes the head steep and the tail flat, > 1 the opposite (a stretched exponential, the
    shape of MovieLens' rank-frequency curves)."""
    ranks = (np.arange(n) + 0.5) / n
    return np.exp(-spread * ranks**curve)[rng.permutation(n)]


def tables(comp: np.ndarray, mix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cdf, prob, pbar) of the sampler from component x item weights ``comp`` (float64,
    C-contiguous, consumed: it becomes ``cdf``) and the average user's mixture ``mix``.
    Peak memory: ``comp`` plus ``prob`` (float32)."""
    n_comp, n_items = comp.shape
    totals = comp.sum(axis=1)
    comp[totals <= 0] = 1.0  # an empty component draws uniformly
    totals[totals <= 0] = n_items
    prob = np.empty((n_items, n_comp), dtype=np.float32)
    for z in range(n_comp):  # one component at a time: no second C x items float64 array
        prob[:, z] = comp[z] / totals[z]
    pbar = prob @ np.asarray(mix, dtype=np.float32)
    np.cumsum(comp, axis=1, out=comp)
    comp /= comp[:, -1:]
    comp[:, -1] = 1.0
    return comp, prob, pbar.astype(np.float64)


@njit(cache=True, inline="always")
def _gamma(state: np.uint64, a: float) -> tuple[np.uint64, float]:
    """Gamma(a, 1) by Marsaglia-Tsang (shape < 1 boosted by U^(1/a))."""
    if a <= 0.0:
        return state, 0.0
    boost = 1.0
    if a < 1.0:
        state, u = _uniform(state)
        boost = (1.0 - u) ** (1.0 / a)
        a += 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    while True:
        state, x = _normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        state, u = _uniform(state)
        if u < 1.0 - 0.0331 * x * x * x * x or np.log(u) < 0.5 * x * x + d * (
            1.0 - v + np.log(v)
        ):
            return state, d * v * boost


@njit(cache=True)
def _draw_users(seed, offsets, parent, base, kappa, cdf, prob, pbar, order, user_bias,
                item_bias, affinity, noise, t_start, t_span, with_time, lo, hi,
                out_users, out_items, out_latent, out_ts):
    """Items, latent ratings and timestamps of users lo..hi-1 (each user's rows sorted)."""
    n_comp, n_items = cdf.shape
    marker = np.zeros(n_items, dtype=np.int32)  # marker[i] == u + 1: u already has i
    theta = np.empty(n_comp)
    acc = np.empty(n_comp)
    for u in range(lo, hi):
        start = offsets[u]
        need = offsets[u + 1] - start
        state = _mix(seed ^ (np.uint64(u + 1) * _GOLDEN))
        p = parent[u]
        total = 0.0
        for z in range(n_comp):
            state, g = _gamma(state, kappa * base[p, z])
            theta[z] = g
            total += g
        if total <= 0.0 or not np.isfinite(total):
            for z in range(n_comp):
                theta[z] = base[p, z]
            total = theta.sum()
            if total <= 0.0:
                theta[:] = 1.0
                total = n_comp
        run = 0.0
        for z in range(n_comp):
            theta[z] /= total
            run += theta[z]
            acc[z] = run
        got = 0
        attempts = 0
        limit = 64 * need + 1000
        while got < need and attempts < limit:
            attempts += 1
            state, x = _uniform(state)
            z = 0
            while z < n_comp - 1 and acc[z] <= x * run:
                z += 1
            state, y = _uniform(state)
            i = np.searchsorted(cdf[z], y, side="right")
            if i >= n_items:
                i = n_items - 1
            if marker[i] != u + 1:
                marker[i] = u + 1
                out_items[start + got] = i
                got += 1
        r = 0
        while got < need:  # a user asking for most of its reachable items: fill by popularity
            i = order[r]
            r += 1
            if marker[i] != u + 1:
                marker[i] = u + 1
                out_items[start + got] = i
                got += 1
        out_items[start : start + need].sort()
        out_users[start : start + need] = u
        for j in range(start, start + need):
            i = out_items[j]
            pu = 0.0
            for z in range(n_comp):
                pu += theta[z] * prob[i, z]
            lift = np.log(max(pu, 1e-300) / max(pbar[i], 1e-300))
            state, eps = _normal(state)
            out_latent[j] = user_bias[u] + item_bias[i] + affinity * lift + noise * eps
            if with_time:
                state, t = _uniform(state)
                out_ts[j] = np.int64(t_start[u] + t * t_span[u])


@njit(cache=True, parallel=True)
def _draw_parallel(seed, offsets, parent, base, kappa, cdf, prob, pbar, order, ub, ib, aff,
                   noise, t_start, t_span, with_time, n_chunks, out_u, out_i, out_l, out_t):
    n_users = len(offsets) - 1
    for c in prange(n_chunks):
        lo = c * n_users // n_chunks
        hi = (c + 1) * n_users // n_chunks
        _draw_users(seed, offsets, parent, base, kappa, cdf, prob, pbar, order, ub, ib, aff,
                    noise, t_start, t_span, with_time, lo, hi, out_u, out_i, out_l, out_t)


@njit(cache=True, parallel=True)
def _cut(values, cuts, levels):
    """In place: each latent value becomes the level of the bin ``cuts`` put it in."""
    for j in prange(len(values)):
        values[j] = levels[np.searchsorted(cuts, values[j], side="right")]


def cut_points(latent: np.ndarray, shares: np.ndarray, sample: int = 1 << 20) -> np.ndarray:
    """Thresholds between levels: quantiles of (an evenly strided sample of) ``latent``."""
    step = max(1, len(latent) // sample)
    probe = np.sort(latent[::step].astype(np.float64))
    return np.quantile(probe, np.cumsum(shares)[:-1] / np.sum(shares))


def sample(model: LatentModel, counts: np.ndarray, seed: int, threads: int = 1,
           implicit: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(users, items, ratings, timestamps) with ``counts[u]`` distinct items for user u.

    ``implicit``: every value is 1.0 (the latent ratings are still drawn, so the items and
    timestamps are those of the rated data)."""
    n = int(counts.sum())
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    users = np.empty(n, dtype=np.int32)
    items = np.empty(n, dtype=np.int32)
    ratings = np.empty(n, dtype=np.float32)
    with_time = model.t_start is not None
    timestamps = np.empty(n if with_time else 0, dtype=np.int64)
    zeros = np.zeros(1)
    t_start = model.t_start if with_time else zeros
    t_span = model.t_span if with_time else zeros
    order = np.argsort(-model.pbar, kind="stable").astype(np.int32)
    args = (np.uint64(np.random.default_rng(seed).integers(0, 2**63 - 1)), offsets,
            model.parent.astype(np.int32), model.base, float(model.kappa), model.cdf,
            model.prob, model.pbar, order, model.user_bias, model.item_bias,
            float(model.affinity), float(model.noise), t_start, t_span, with_time)
    if threads <= 1:
        _draw_users(*args, 0, len(counts), users, items, ratings, timestamps)
    else:
        with limited(threads, blas=False):
            chunks = max(1, min(len(counts), 8 * threads))
            _draw_parallel(*args, chunks, users, items, ratings, timestamps)
    if implicit:
        ratings[:] = 1.0
    else:
        cuts = cut_points(ratings, model.shares)
        with limited(max(1, threads), blas=False):
            _cut(ratings, cuts.astype(np.float32), model.levels.astype(np.float32))
    return users, items, ratings, (timestamps if with_time else None)
