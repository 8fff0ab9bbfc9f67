"""Adapters for Surprise (scikit-surprise): the eleven algorithms of its README benchmark."""

from .models import (
    NMF,
    SVD,
    BaselineOnly,
    CoClustering,
    FactorModel,
    KNNAdapter,
    KNNBaseline,
    KNNBasic,
    KNNWithMeans,
    KNNWithZScore,
    NormalPredictor,
    SlopeOne,
    SurpriseAdapter,
    SVDpp,
    build_trainset,
)

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
