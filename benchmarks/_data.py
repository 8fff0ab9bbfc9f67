"""ML-100k for the ALS benchmarks: ``bench.datasets`` when present, else the raw RecBole copy.

The fallback builds the same ``Dataset`` (codes = sorted raw ids, genres as item features)
from /tmp/rb/recbole/dataset_example/ml-100k so the scripts run before the data layer lands.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.data import Dataset, Features, Ratings

RAW_ML100K = "/tmp/rb/recbole/dataset_example/ml-100k/ml-100k"


def load_ml100k() -> Dataset:
    try:
        from bench import datasets
    except ImportError:
        return _load_raw(RAW_ML100K)
    return datasets.load("ml-100k")


def _load_raw(base: str) -> Dataset:
    import pandas as pd

    inter = pd.read_csv(base + ".inter", sep="\t")
    inter.columns = ["user", "item", "rating", "timestamp"]
    user_ids, users = np.unique(inter["user"].to_numpy(), return_inverse=True)
    item_ids, items = np.unique(inter["item"].to_numpy(), return_inverse=True)
    ratings = Ratings(
        users.astype(np.int32),
        items.astype(np.int32),
        inter["rating"].to_numpy(np.float32),
        inter["timestamp"].to_numpy(np.int64),
        len(user_ids),
        len(item_ids),
    )
    meta = pd.read_csv(base + ".item", sep="\t").set_index("item_id:token").reindex(item_ids)
    genres = meta["class:token_seq"].fillna("").str.split()
    names = sorted({g for gs in genres for g in gs})
    column = {g: j for j, g in enumerate(names)}
    rows = np.repeat(np.arange(len(genres)), [len(gs) for gs in genres])
    cols = np.array([column[g] for gs in genres for g in gs], dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(item_ids), len(names))
    )
    return Dataset(
        "ml-100k",
        ratings,
        user_ids,
        item_ids,
        (1.0, 5.0),
        item_features=Features(matrix, tuple(f"genre={g}" for g in names)),
    )
