"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

Closed form of an item-item model with a zero diagonal::

    G = X^T X + lambda I        (items x items)
    P = G^-1
    B = -P / diag(P)            (column j divided by P[j, j])
    diag(B) = 0

and a user's scores are ``X_u B``.  One dense items x items matrix is alive at a time:
the Gram matrix is built into a Fortran-ordered array an item chunk at a time, LAPACK's
Cholesky factorisation and inverse (``potrf`` / ``potri``) overwrite it in place, and
``B`` is formed in place from ``P``.  ``MATRICES_ALIVE`` is that count, for cost models.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from bench.errors import UserError

#: dense items x items matrices alive at once while fitting (G, overwritten by P, then B)
MATRICES_ALIVE = 1
#: items per column chunk of the Gram product: the sparse temporary is items x chunk
GRAM_CHUNK = 1024


def gram(matrix: sp.csr_matrix, dtype: type = np.float64) -> np.ndarray:
    """Dense ``X^T X`` (Fortran order, so LAPACK can overwrite it), a column chunk at a time."""
    n_items = matrix.shape[1]
    out = np.empty((n_items, n_items), dtype=dtype, order="F")
    by_item = matrix.tocsc()
    transposed = by_item.T.tocsr()  # X^T as CSR: rows are items
    for lo in range(0, n_items, GRAM_CHUNK):
        hi = min(lo + GRAM_CHUNK, n_items)
        out[:, lo:hi] = (transposed @ by_item[:, lo:hi]).toarray()
    return out


def _mirror_upper(a: np.ndarray) -> None:
    """Copy the upper triangle onto the lower one in place (``potri`` fills only one)."""
    n = a.shape[0]
    step = 256  # the block temporaries stay small next to the matrix
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        block = a[lo:hi, lo:hi]
        upper = np.triu(block)
        block[...] = upper + np.triu(block, 1).T
        a[hi:, lo:hi] = a[lo:hi, hi:].T


def ease_weights(
    matrix: sp.csr_matrix, regularization: float, dtype: type = np.float64
) -> np.ndarray:
    """The items x items weight matrix ``B`` of EASE for user x item ``matrix``."""
    if not regularization > 0:
        raise UserError(f"regularization must be > 0, got {regularization!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise UserError(f"dtype must be float32 or float64, got {dtype}")
    g = gram(matrix, dtype.type)
    g[np.diag_indices_from(g)] += dtype.type(regularization)
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (g,))
    # G is symmetric positive definite (lambda > 0): Cholesky, then the inverse from it.
    factor, info = potrf(g, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed (potrf info {info})")
    p, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse from the Cholesky factor failed (potri info {info})")
    _mirror_upper(p)
    diagonal = p.diagonal().copy()
    p /= -diagonal[None, :]  # B[i, j] = -P[i, j] / P[j, j]
    p[np.diag_indices_from(p)] = 0.0
    return p


def estimate_bytes(n_users: int, n_items: int, n_ratings: int, itemsize: int = 8) -> int:
    """Peak bytes of fitting and then scoring: the dense matrix, plus the larger of the Gram
    chunk (fit) and the harness's score block (``X_u B`` in ``itemsize``, then float32),
    plus two copies of the interactions (CSC and its transpose, ~12 bytes a rating each)."""
    from bench.evaluation.ranking import batch_size

    dense = MATRICES_ALIVE * n_items * n_items * itemsize
    gram_chunk = n_items * min(GRAM_CHUNK, n_items) * (itemsize + 12)  # sparse product + array
    score_block = min(batch_size(n_items), n_users) * n_items * (itemsize + 4)
    return int(dense + max(gram_chunk, score_block) + 2 * 12 * n_ratings)
