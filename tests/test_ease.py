"""EASE: the closed form on a hand-sized matrix, a zero diagonal, and its memory estimate."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from recbench_adapters.recbench import EASE

from bench.data.model import Ratings, TrainSet
from bench.execution.admission import DataShape
from bench.models import ease


def tiny() -> TrainSet:
    """4 users x 3 items plus an item nobody rated and a user with no rows."""
    rows = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    users, items = np.nonzero(rows)
    r = Ratings(users.astype(np.int32), items.astype(np.int32),
                np.full(len(users), 5.0, np.float32), None, 5, 4)  # fmt: skip
    return TrainSet(r, (1.0, 5.0))


def test_weights_equal_the_closed_form_computed_by_hand() -> None:
    # X^T X of the three rated items: diagonal 3, off-diagonal 2; lambda = 1 gives
    # G = [[4,2,2],[2,4,2],[2,2,4]] = 2 I + 2 J, whose inverse is (I - J/4) / 2:
    # P = diag 3/8, off-diagonal -1/8, so B = -P / diag(P) has 1/3 off the diagonal.
    model = EASE(regularization=1.0).fit(tiny())
    expected = np.zeros((4, 4))
    expected[:3, :3] = 1 / 3
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.weights_, expected, atol=1e-12)
    # Scores are X_u B: user 0 rated items 0 and 1, so item 2 scores 2/3.
    np.testing.assert_allclose(model.score(np.array([0]))[0, :3], [1 / 3, 1 / 3, 2 / 3], rtol=1e-6)


def test_weights_match_numpy_inverse_and_have_a_zero_diagonal() -> None:
    rng = np.random.default_rng(0)
    x = sp.random(200, 600, density=0.03, random_state=rng, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    dense = x.toarray().astype(np.float64)
    p = np.linalg.inv(dense.T @ dense + 7.0 * np.eye(600))
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        b = ease.ease_weights(x, 7.0, dtype)
        assert b.dtype == dtype
        assert not np.diag(b).any()
        np.testing.assert_allclose(b, expected, atol=tol)


def test_cold_items_rank_last_and_cold_users_by_popularity() -> None:
    model = EASE(regularization=1.0).fit(tiny())
    scores = model.score(np.array([0, 4]))
    assert scores[0, 3] == np.finfo(np.float32).min
    np.testing.assert_array_equal(scores[1], [3, 3, 3, 0])  # item popularity


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_estimate_bytes_is_the_dense_matrix_and_bounds_the_measured_peak(dtype: str) -> None:
    itemsize = np.dtype(dtype).itemsize
    adapter = EASE(regularization=10.0, dtype=dtype)
    n_items, n_ratings = 1500, 15_000
    dense = ease.MATRICES_ALIVE * n_items**2 * itemsize
    estimate = adapter.estimate_bytes(DataShape(300, n_items, n_ratings))
    assert dense < estimate < dense + 64 * 2**20 + 24 * n_ratings
    # For a large catalogue the items^2 term is nearly all of it.
    big = adapter.estimate_bytes(DataShape(10**6, 50_000, 10**7))
    assert 50_000**2 * itemsize <= big < 1.2 * 50_000**2 * itemsize
    # numpy reports its allocations to tracemalloc; LAPACK works in place.
    x = sp.random(300, n_items, density=0.02, random_state=1, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    tracemalloc.start()
    ease.ease_weights(x, 10.0, np.dtype(dtype))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert dense <= peak <= adapter.estimate_bytes(DataShape(300, n_items, x.nnz))


def test_the_base_adapter_has_no_estimate() -> None:
    from recbench_adapters.scipy import PureSVD

    assert PureSVD().estimate_bytes(DataShape(10, 10, 10)) is None
