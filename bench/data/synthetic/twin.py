"""``synthetic:like=DATASET,scale=S``: a synthetic twin of a real dataset, of any size.

The twin is fitted to DATASET (a registry name such as ``ml-100k``, or ``csv:PATH`` for a
user's own file) and then sampled by ``bench.data.synthetic.engine``, the sampler of the latent
generator, so it scales to hundreds of millions of rows in bounded memory.  What it keeps:

* **low-rank structure**: a probabilistic latent semantic model (PLSA, equivalently a
  KL-divergence non-negative factorisation) of the user x item interactions with
  ``topics`` topics plus one fixed component, the item popularity itself:
  ``p_u(i) = theta_u[0] pop(i) + sum_z theta_u[z] phi_z(i)``, fitted by EM (``iterations``);
* **user activity**: each synthetic user is a child of one real user (every real user has
  ``scale`` children, give or take one, in shuffled order), with its parent's number of
  ratings times a
  log-normal ``jitter``, scaled so the total is ``ratings``, and never below the source's
  smallest user; its mixture is ``theta ~ Dirichlet(kappa * theta_parent)`` (``kappa``
  large: close to the parent; small: freer), so the twin's users are draws around the
  fitted users, not copies of their rows;
* **item popularity**: each synthetic item is a child of one real item with its parent's
  topic profile and popularity weight times a log-normal ``jitter`` (by default the
  catalogue is the source's, one child per item; with ``items=`` each real item has about
  items / source items children, which split their parent's draws), and the weights are
  fitted so that each real item's children together get its count, scaled by the users
  (``calibrate_items``);
* **ratings**: the source's levels and their shares; the latent rating is the source's
  ``b_u + b_i + affinity * log(p_u(i) / pbar(i)) + noise``, fitted to the normal scores of
  the source's ratings (shrunk bias means, least squares for ``affinity``), children taking
  their parents' biases;
* **time**: each user is active over its parent's first-to-last rating window; items keep
  their parent's side features (genres).

``scale=S`` multiplies the users (and so the ratings) by S over the source's catalogue:
the ratings per user keep their distribution, the ratings per item theirs times S (the
share of users who rate an item is kept, and the density), and every model that fits the
source fits the twin's catalogue.  ``items=N`` grows (or shrinks) the catalogue instead:
then an item's children split its draws, so the counts per item keep their distribution
when users and items grow alike, and each item's share of the users falls.  ``users=`` and
``ratings=`` set those sizes directly.  A twin is not a privacy guarantee: each synthetic
user is drawn around one real user's fitted tastes and activity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.special import ndtri

from bench.data.model import Dataset, Features
from bench.data.synthetic.engine import LatentModel, allot, sample, tables
from bench.data.synthetic.popularity import synthetic_dataset
from bench.errors import UserError

#: rating values with more distinct levels than this are binned into this many quantiles
MAX_LEVELS = 32
#: name parameters of a twin (besides like=): name -> (type, default)
PARAMS: dict[str, tuple[type, Any]] = {
    "scale": (float, 1.0), "n_users": (int, None), "n_items": (int, None),
    "n_ratings": (int, None), "seed": (int, 0), "topics": (int, 40), "kappa": (float, 3.0),
    "jitter": (float, 0.1), "iterations": (int, 100), "calibration": (int, 8),
    "threads": (int, 1),
}


@njit(cache=True)
def _em_step(indptr, indices, theta, phi, new_theta, new_phi):
    """One PLSA EM pass over the interactions: responsibilities into the new counts."""
    n_comp = theta.shape[1]
    q = np.empty(n_comp)
    for u in range(len(indptr) - 1):
        for j in range(indptr[u], indptr[u + 1]):
            i = indices[j]
            total = 0.0
            for z in range(n_comp):
                q[z] = theta[u, z] * phi[i, z]
                total += q[z]
            if total <= 0.0:
                continue
            for z in range(n_comp):
                share = q[z] / total
                new_theta[u, z] += share
                new_phi[i, z] += share


@njit(cache=True)
def _pair_dots(users, items, theta, phi, out):
    """out[j] = theta[users[j]] . phi[items[j]]"""
    for j in range(len(users)):
        total = 0.0
        for z in range(theta.shape[1]):
            total += theta[users[j], z] * phi[items[j], z]
        out[j] = total


def fit_topics(x: sp.csr_matrix, topics: int, iterations: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """PLSA with a fixed popularity component: (theta users x C, phi items x C), each theta
    row and each phi column a distribution; column 0 of phi is the item popularity."""
    rng = np.random.default_rng(seed)
    n_users, n_items = x.shape
    pop = np.asarray(x.sum(axis=0)).ravel()
    pop = pop / pop.sum()
    phi = np.empty((n_items, topics + 1))
    phi[:, 0] = pop
    phi[:, 1:] = rng.gamma(1.0, 1.0, (n_items, topics)) * (pop[:, None] + 1e-3 / n_items)
    phi[:, 1:] /= phi[:, 1:].sum(axis=0)
    theta = np.full((n_users, topics + 1), 1.0 / (topics + 1))
    indptr, indices = x.indptr.astype(np.int64), x.indices.astype(np.int32)
    for _ in range(iterations):
        new_theta = np.zeros_like(theta)
        new_phi = np.zeros_like(phi)
        _em_step(indptr, indices, theta, phi, new_theta, new_phi)
        theta = new_theta / np.maximum(new_theta.sum(axis=1, keepdims=True), 1e-300)
        phi[:, 1:] = new_phi[:, 1:] / np.maximum(new_phi[:, 1:].sum(axis=0), 1e-300)
    theta[theta.sum(axis=1) == 0] = 1.0 / (topics + 1)  # users without rows: any mixture
    return theta, phi


def rating_levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, shares, normal score of each row): the source's distinct values (binned by
    quantiles beyond ``MAX_LEVELS``), their shares, and each row's mid-rank normal score."""
    levels, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(levels) > MAX_LEVELS:
        edges = np.quantile(values, np.linspace(0, 1, MAX_LEVELS + 1)[1:-1])
        bins = np.searchsorted(edges, values, side="right")
        levels = np.array([np.median(values[bins == b]) for b in np.unique(bins)])
        inverse = np.unique(bins, return_inverse=True)[1]
        counts = np.bincount(inverse)
    shares = counts / counts.sum()
    upper = np.cumsum(shares)
    score = ndtri(np.clip(upper - shares / 2, 1e-9, 1 - 1e-9))
    return levels.astype(np.float64), shares, score[inverse]


def fit_ratings(users: np.ndarray, items: np.ndarray, y: np.ndarray, lift: np.ndarray,
                n_users: int, n_items: int, shrink: float = 5.0, rounds: int = 5
                ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``y ~ b_u + b_i + affinity * lift + e`` by alternating shrunk means and least
    squares: (user_bias, item_bias, affinity, noise sd)."""
    y = y - y.mean()
    lift = lift - lift.mean()
    bu, bi, aff = np.zeros(n_users), np.zeros(n_items), 0.0
    nu = np.bincount(users, minlength=n_users) + shrink
    ni = np.bincount(items, minlength=n_items) + shrink
    for _ in range(rounds):
        rest = y - bu[users] - bi[items]
        aff = float(rest @ lift / max(lift @ lift, 1e-12))
        bi = np.bincount(items, y - bu[users] - aff * lift, minlength=n_items) / ni
        bu = np.bincount(users, y - bi[items] - aff * lift, minlength=n_users) / nu
    residual = y - bu[users] - bi[items] - aff * lift
    return bu, bi, aff, float(residual.std())


def children(rng: np.random.Generator, n_parents: int, n_children: int) -> np.ndarray:
    """Parent of each child: every parent gets floor or ceil of n_children / n_parents
    children, in shuffled order."""
    return (np.arange(n_children, dtype=np.int64) * n_parents // n_children)[
        rng.permutation(n_children)].astype(np.int32)


def latent(theta: np.ndarray, comp: np.ndarray, user_parent: np.ndarray, kappa: float,
           mix: np.ndarray, **rest: Any) -> LatentModel:
    """The sampler's model from component x item weights ``comp`` (rows: components;
    consumed, see ``tables``) and the fitted user mixtures ``theta``; ``rest``: biases,
    rating and time fields."""
    cdf, prob, pbar = tables(comp, mix)
    return LatentModel(parent=user_parent, base=theta, kappa=kappa, cdf=cdf, prob=prob,
                       pbar=pbar, **rest)


def components(phi: np.ndarray, factor: np.ndarray, item_parent: np.ndarray,
               wobble: np.ndarray) -> np.ndarray:
    """Component x synthetic item weights: each child its parent's ``phi`` row times the
    parent's ``factor`` and its own ``wobble``."""
    comp = np.ascontiguousarray((phi * factor[:, None]).T)[:, item_parent]
    comp *= wobble
    return comp


def calibrate_items(theta: np.ndarray, phi: np.ndarray, counts: np.ndarray, target: np.ndarray,
                    kappa: float, mix: np.ndarray, item_parent: np.ndarray, wobble: np.ndarray,
                    rounds: int, seed: int) -> np.ndarray:
    """Factor per source item so that sampling sets (each user's items distinct) gives every
    item its ``target`` count: PLSA fits rates of draws with replacement, and drawing
    distinct items moves mass from popular items to the tail, the more so the larger an
    item's chance per draw.  So the source's users draw from the synthetic catalogue (each
    item split into its children, as in the twin) and the counts of each parent's
    children are fitted to its target (iterative proportional fitting)."""
    factor = np.ones(len(phi))
    n_users = len(theta)
    flat = dict(user_bias=np.zeros(n_users), item_bias=np.zeros(len(item_parent)),
                affinity=0.0, noise=1.0, levels=np.ones(1), shares=np.ones(1), t_start=None,
                t_span=None)
    parents = np.arange(n_users, dtype=np.int32)
    for r in range(rounds):
        model = latent(theta, components(phi, factor, item_parent, wobble), parents, kappa,
                       mix, **flat)
        items = sample(model, counts, seed + r, implicit=True)[1]
        got = np.bincount(item_parent[items], minlength=len(phi))
        factor *= (target + 0.5) / (got + 0.5)
        factor /= factor.mean()
    return factor


def twin(source: Dataset, *, scale: float = 1.0, n_users: int | None = None,
         n_items: int | None = None, n_ratings: int | None = None, seed: int = 0,
         topics: int = 40, kappa: float = 3.0, jitter: float = 0.1, iterations: int = 100,
         calibration: int = 8, threads: int = 1, name: str | None = None) -> Dataset:
    """A synthetic twin of ``source`` (see the module docstring)."""
    if not scale > 0 or topics < 1 or kappa <= 0 or jitter < 0 or iterations < 1:
        raise UserError("synthetic twin: scale, topics, kappa and iterations must be > 0, "
                        "jitter >= 0")
    r = source.ratings
    n_users = n_users or max(1, round(source.n_users * scale))
    n_items = n_items or source.n_items
    n_ratings = n_ratings or round(len(r) * n_users / source.n_users)
    cap = max(1, int(0.9 * n_items))
    if n_ratings > n_users * cap or n_ratings < n_users:
        raise UserError(f"synthetic twin: {n_ratings} ratings do not fit {n_users} users x "
                        f"{n_items} items (each user needs 1..{cap})")
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((np.ones(len(r)), (r.users, r.items)), shape=(source.n_users,
                                                                     source.n_items))
    x.data[:] = 1.0
    theta, phi = fit_topics(x, topics, iterations, seed)
    counts = r.user_counts()
    mix = counts @ theta / counts.sum()  # the dataset's composition: the average rating's
    pu = np.empty(len(r))
    _pair_dots(r.users, r.items, theta, phi, pu)
    lift = np.log(np.maximum(pu, 1e-300) / np.maximum(phi @ mix, 1e-300)[r.items])
    implicit = source.implicit
    if implicit:
        levels, shares = np.ones(1), np.ones(1)
        bu, bi, aff, noise = np.zeros(source.n_users), np.zeros(source.n_items), 0.0, 1.0
    else:
        levels, shares, y = rating_levels(r.ratings.astype(np.float64))
        bu, bi, aff, noise = fit_ratings(r.users, r.items, y, lift, source.n_users,
                                         source.n_items)
    item_parent = children(rng, source.n_items, n_items)
    user_parent = children(rng, source.n_users, n_users)
    per_item = np.bincount(item_parent, minlength=source.n_items)[item_parent]
    wobble = np.exp(jitter * rng.standard_normal(n_items) - jitter**2 / 2) / per_item
    factor = calibrate_items(theta, phi, counts, r.item_counts().astype(np.float64), kappa,
                             mix, item_parent, wobble, calibration, seed)
    comp = components(phi, factor, item_parent, wobble)
    lo = int(min(counts.min(), n_ratings // n_users))
    activity = counts[user_parent] * np.exp(jitter * rng.standard_normal(n_users))
    user_counts = allot(activity, n_ratings, max(1, lo), cap)
    if r.timestamps is not None:
        first = np.full(source.n_users, np.iinfo(np.int64).max)
        last = np.full(source.n_users, np.iinfo(np.int64).min)
        np.minimum.at(first, r.users, r.timestamps)
        np.maximum.at(last, r.users, r.timestamps)
        t_start = first[user_parent].astype(np.float64)
        t_span = (last - first)[user_parent].astype(np.float64)
    else:
        t_start = t_span = None
    model = latent(theta, comp, user_parent, kappa, mix, user_bias=bu[user_parent],
                   item_bias=bi[item_parent], affinity=aff, noise=noise, levels=levels,
                   shares=shares, t_start=t_start, t_span=t_span)
    del comp
    stream = int(rng.integers(0, 2**62))
    users, items, ratings, timestamps = sample(model, user_counts, stream, threads, implicit)
    features = source.item_features
    if features is not None:
        features = Features(features.matrix[item_parent], features.names)
    params = {"like": source.name, "scale": scale, "n_users": n_users, "n_items": n_items,
              "n_ratings": int(user_counts.sum()), "seed": seed, "topics": topics,
              "kappa": kappa, "jitter": jitter, "iterations": iterations,
              "fitted": {"affinity": round(aff, 4), "noise": round(noise, 4),
                         "popularity_share": round(float(mix[0]), 4)}}
    ds_name = name or f"synthetic:like={source.name},scale={scale:g},seed={seed}"
    return synthetic_dataset(ds_name, (users, items, ratings, timestamps), n_users, n_items,
                             source="bench.data.synthetic.twin.twin", params=params,
                             item_features=features, rating_scale=source.rating_scale,
                             value_kind="presence" if implicit else "rating")


def parse(params: dict[str, str], spec: str) -> tuple[str, dict[str, Any]]:
    """(source name, keyword arguments of ``twin``) from a ``synthetic:like=...`` name."""
    known = {**PARAMS, "like": (str, None)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise UserError(f"{spec!r}: unknown parameter(s) {', '.join(unknown)}; a twin accepts "
                        "like, users, items, ratings, scale, seed, topics, kappa, jitter, "
                        "iterations, calibration, threads")
    kwargs: dict[str, Any] = {}
    for key, text in params.items():
        if key == "like":
            continue
        kind = PARAMS[key][0]
        try:
            value = float(text.replace("_", ""))
            if kind is int and value != int(value):
                raise ValueError
            kwargs[key] = kind(value)
        except ValueError:
            raise UserError(f"{spec!r}: {key}={text!r} is not a number") from None
    if not params.get("like"):
        raise UserError(f"{spec!r}: like= needs a dataset, e.g. like=ml-100k or like=csv:PATH")
    return params["like"], kwargs


def expected_ratings(params: dict[str, str], load: Callable[[str], Dataset]) -> int:
    """Roughly how many ratings the twin named by ``params`` has (for caching decisions);
    ``load`` reads a dataset by name (``bench.data.datasets.load``)."""
    like, kwargs = parse(params, "synthetic:")
    if kwargs.get("n_ratings"):
        return kwargs["n_ratings"]
    source = load(like)
    users = kwargs.get("n_users") or source.n_users * kwargs.get("scale", 1.0)
    return int(len(source.ratings) * users / source.n_users)


def twin_from_params(params: dict[str, str], spec: str,
                     load: Callable[[str], Dataset]) -> Dataset:
    """``twin`` of the dataset named by ``like=`` (read with ``load``, i.e.
    ``bench.data.datasets.load``) with the name's other parameters."""
    like, kwargs = parse(params, spec)
    if like.startswith("synthetic:"):
        raise UserError(f"{spec!r}: like= takes a registry name or csv:PATH, not synthetic data")
    source = load(like)
    if len(source.ratings) == 0:
        raise UserError(f"{spec!r}: {like} has no ratings to learn from")
    return twin(source, **kwargs, name=spec)
