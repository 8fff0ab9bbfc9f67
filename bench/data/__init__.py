"""Data in: datasets by name (registry, fetch, readers, synthetic data, binary cache) coded
into the shared data model (``model``: Ratings, TrainSet, Dataset) and the feedback policy."""
