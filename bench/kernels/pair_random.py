"""Seeded pseudo-random numbers keyed by (user, item): the same pair always gets the same draw.

A stateful generator would give a pair a different number depending on how the harness
batches users or orders pairs; hashing ``(seed, user, item)`` (SplitMix64 finaliser) makes
``predict`` and ``score`` agree and the result independent of batching.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 output function on a uint64 array (wrapping arithmetic is intended)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def pair_uniform(seed: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """float64 uniforms in the open interval (0, 1), one per (user, item) pair."""
    salt = _splitmix64(np.array([int(seed) % 2**64], dtype=np.uint64))[0]
    key = (np.asarray(users).astype(np.uint64) << np.uint64(32)) | np.asarray(items).astype(
        np.uint32
    ).astype(np.uint64)
    bits = _splitmix64(_splitmix64(key ^ salt))
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


_S11, _S27, _S30, _S31, _S32 = (np.uint64(n) for n in (11, 27, 30, 31, 32))
_TWO_M53 = 2.0**-53


@njit(cache=True, inline="always")
def _splitmix64_one(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, parallel=True)
def _uniform_block(salt, users, out):
    n_items = out.shape[1]
    for r in prange(users.shape[0]):
        high = np.uint64(users[r]) << _S32
        for j in range(n_items):
            bits = _splitmix64_one(_splitmix64_one((high | np.uint64(j)) ^ salt))
            out[r, j] = np.float32((np.float64(bits >> _S11) + 0.5) * _TWO_M53)


def pair_uniform_block(seed: int, users: np.ndarray, n_items: int) -> np.ndarray:
    """``pair_uniform(seed, u, i)`` as float32 for every user of ``users`` (rows) and item
    ``0 .. n_items - 1`` (columns), the same numbers, in one parallel pass without the
    per-cell index arrays (an int64 user and item per cell: 16x the block's size)."""
    salt = _splitmix64(np.array([int(seed) % 2**64], dtype=np.uint64))[0]
    out = np.empty((len(users), n_items), dtype=np.float32)
    _uniform_block(np.uint64(salt), np.asarray(users, dtype=np.int64), out)
    return out


def pair_normal(seed: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Standard normal draws, one per (user, item) pair (inverse-CDF of ``pair_uniform``)."""
    return ndtri(pair_uniform(seed, users, items))
