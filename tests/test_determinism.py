"""Same seed, same thread count: identical metrics run to run for deterministic adapters."""

import pytest

from bench.execution.trial import TrialSpec, run_trial
from bench.splitting.splits import SplitSpec

SPLIT = SplitSpec("random", test_fraction=0.2, seed=0)


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


SMALL = "synthetic:users=120,items=80,ratings=2400,seed=4"

# Every registered adapter's one-thread repeatability, and that seed-free models ignore the
# seed, is checked once, at the adapter level, by tests/test_adapter_contract.py
# (``test_one_thread_and_a_fixed_seed_give_the_same_scores``); the trials above check that
# the whole trial path (data, split, fit, ranking, metrics) adds nothing run-dependent.


def test_records_say_when_a_thread_count_makes_them_unrepeatable():
    for adapter, threads, expected in (("lightfm.WARP", 1, True), ("lightfm.WARP", 2, False),
                                       ("implicit.ALS", 2, True)):
        record, _ = run_trial(TrialSpec(SMALL, SPLIT, 0, adapter, {}, threads=threads), None)
        assert record["status"] == "ok", record["error"]
        assert record["reproducible"] is expected, (adapter, threads)
