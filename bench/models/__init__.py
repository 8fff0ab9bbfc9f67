"""recbench's own models (ALS, EASE, federated MF, neural CF) as thin classes; their compiled
hot loops live in ``bench.kernels``, the adapters that register them in ``adapters/``."""
