"""Synthetic data: ``synthetic:`` (latent structure), its twin ``synthetic:like=...`` and the
popularity-only ``synthetic-popularity:`` generator kept for speed tests.

* ``latent``: the ``synthetic:`` generator, defaults calibrated on ML-100k;
* ``twin``: ``synthetic:like=DATASET,scale=S``, a dataset of any size fitted on a real one;
* ``engine``: the sampler both use (per-user counter streams, no users x items array);
* ``popularity``: the earlier generator (items by popularity alone), the counter-based
  random streams and the shared size check / ``Dataset`` builder.

``generate`` here is the popularity-only generator, as before the split (its callers are
speed tests and the adapter contract tests).
"""

from bench.data.synthetic.popularity import generate, generate_from_params

__all__ = ["generate", "generate_from_params"]
