"""Adapters for Surprise (scikit-surprise): the eleven algorithms of its README benchmark,
trained by Surprise's own code and scored by recbench's vectorised equivalent of its predict.

``scoring``: the trainset built as Surprise builds it, id maps and the shared vectorised
``predict`` / ``score``; ``models``: the factor, baseline, co-clustering, normal and Slope
One models; ``knn``: the k-NN family on one numba kernel.
"""

from .knn import KNNAdapter, KNNBaseline, KNNBasic, KNNWithMeans, KNNWithZScore
from .models import (
    NMF,
    SVD,
    BaselineOnly,
    CoClustering,
    FactorModel,
    NormalPredictor,
    SlopeOne,
    SVDpp,
)
from .scoring import SurpriseAdapter, build_trainset

__all__ = [
    "NMF",
    "SVD",
    "BaselineOnly",
    "CoClustering",
    "FactorModel",
    "KNNAdapter",
    "KNNBaseline",
    "KNNBasic",
    "KNNWithMeans",
    "KNNWithZScore",
    "NormalPredictor",
    "SVDpp",
    "SlopeOne",
    "SurpriseAdapter",
    "build_trainset",
]
