"""Fit time of sklearn.TruncatedSVD (randomized) vs scipy.PureSVD (svds), equal factors.

Both adapters on all ML-100k ratings (interactions under the default feedback policy), one
BLAS thread, fits interleaved (the machine is shared); prints each median and the ratio.
Quality at equal factors is in the ``quick`` suite's rows.

    python benchmarks/compare_truncated_svd.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from recbench_adapters.scipy import PureSVD
from recbench_adapters.sklearn import TruncatedSVD
from threadpoolctl import threadpool_limits

from bench import TrainSet, load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--factors", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args()
    data = load_dataset("ml-100k")
    train = TrainSet(data.ratings, data.rating_scale)
    makers = {"scipy.PureSVD": lambda k: PureSVD(rank=k),
              "sklearn.TruncatedSVD": lambda k: TruncatedSVD(n_components=k)}  # fmt: skip
    seconds: dict[tuple[str, int], list[float]] = {}
    with threadpool_limits(limits=1):
        for _ in range(args.rounds):
            for k in args.factors:
                for name, make in makers.items():
                    model = make(k)
                    prepared = model.bind(train)
                    start = time.perf_counter()
                    model.fit_prepared(prepared)
                    seconds.setdefault((name, k), []).append(time.perf_counter() - start)
    for k in args.factors:
        pure = float(np.median(seconds[("scipy.PureSVD", k)]))
        sk = float(np.median(seconds[("sklearn.TruncatedSVD", k)]))
        print(f"factors {k}: PureSVD {pure:.3f} s, TruncatedSVD {sk:.3f} s, ratio {sk / pure:.2f}")


if __name__ == "__main__":
    main()
