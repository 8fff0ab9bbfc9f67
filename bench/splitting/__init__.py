"""Splitting: the seeded split protocols (random, k-fold, temporal, cold users / items ...)
and their stored, fingerprinted assignments, so every model sees the same rows."""
