"""Numba kernels: compiled hot loops kept apart from the thin model classes over them."""
