"""scikit-learn's ``TruncatedSVD`` as a PureSVD: the seeds' way of taking a truncated SVD.

``sklearn.TruncatedSVD`` factorises the same interaction matrix as ``scipy.PureSVD``
(shared feedback policy, ``bench.data.feedback``) and scores it the same way, so the two rows
differ only by the solver: user factors ``X V``, scores ``X V V^T`` (``factor_scores``).
With the default ``algorithm="randomized"`` (Halko et al.; ``n_iter`` power iterations,
scikit-learn's default 5) it approximates the rank-k SVD that ``svds`` computes to
convergence; ``seed`` is its ``random_state``.  Ranking only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD as SkTruncatedSVD

from bench.adapter import ProjectsInteractions
from bench.errors import UserError


class TruncatedSVD(ProjectsInteractions):
    name = "sklearn.TruncatedSVD"
    library = "scikit-learn"
    #: scikit-learn's default is n_components=2; ours, 50, is scipy.PureSVD's
    recbench_defaults: ClassVar[tuple[str, ...]] = ("n_components",)
    predicts_ratings = False
    ranks = True
    search_space: ClassVar[dict[str, list[Any]]] = {"n_components": [10, 20, 50, 100, 200]}

    def __init__(
        self,
        n_components: int = 50,
        algorithm: str = "randomized",
        n_iter: int = 5,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.n_components = n_components  # as scipy.PureSVD's rank (same default, 50)
        self.algorithm = algorithm
        self.n_iter = n_iter  # scikit-learn's default

    def fit_prepared(self, prepared: sp.csr_matrix) -> TruncatedSVD:
        limit = min(prepared.shape) - 1  # arpack needs k < min(shape); keep one rule
        if not 1 <= self.n_components <= limit:
            raise UserError(
                f"n_components must be between 1 and {limit} for this data, "
                f"got {self.n_components}"
            )
        svd = SkTruncatedSVD(
            n_components=self.n_components,
            algorithm=self.algorithm,
            n_iter=self.n_iter,
            random_state=self.seed,
        )
        svd.fit(prepared)
        vt = svd.components_.astype(np.float32)
        self.keep_factors(prepared, np.asarray(prepared @ vt.T, dtype=np.float32), vt)  # X V
        return self
