"""Same seed, same thread count: identical metrics run to run for deterministic adapters."""

import pytest

from bench.trial import TrialSpec, run_trial

SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 0}


@pytest.mark.parametrize(
    ("adapter", "threads"),
    [
        ("baseline.Bias", 1),
        ("surprise.SVD", 1),
        ("implicit.ALS", 2),
        ("lightfm.WARP", 1),  # Hogwild SGD: deterministic single-threaded only
        ("scipy.PureSVD", 2),
        ("recbench.ALS", 2),
        ("recbench.ImplicitALS", 2),
    ],
)
def test_repeated_trials_give_identical_metrics(ml100k, adapter, threads):
    spec = TrialSpec("ml-100k", SPLIT, 0, adapter, {}, seed=3, threads=threads)
    first, _ = run_trial(spec, None)
    second, _ = run_trial(spec, None)
    assert first["status"] == second["status"] == "ok", first["error"]
    assert first["metrics"] == second["metrics"]
    assert first["split_fingerprint"] == second["split_fingerprint"]
