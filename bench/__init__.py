"""recbench: fair, reproducible, fast benchmarks of classic recommender libraries."""

__version__ = "0.1.0"
