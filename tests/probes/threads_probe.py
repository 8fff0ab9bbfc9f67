"""A probe adapter for tests/test_threads.py, loaded through RECBENCH_ADAPTERS_PATH: it
records the thread counts its fit runs under (numba, every BLAS pool) in ``fitted``."""

import numba
import numpy as np
from threadpoolctl import threadpool_info

from bench.adapter import Adapter


class Threads(Adapter):
    name = "probe.Threads"
    predicts_ratings = True
    ranks = False
    stochastic = False

    def fit_prepared(self, train):
        self.mean_ = train.global_mean
        blas = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        self.seen_ = {"numba": numba.get_num_threads(), "blas": sorted(blas)}
        return self

    def fitted_info(self):
        return self.seen_

    def predict(self, users, items):
        return np.full(len(users), self.mean_, dtype=np.float32)
