"""Same seed, same thread count: identical metrics run to run for deterministic adapters."""

import pytest

from bench.splits import SplitSpec
from bench.trial import TrialSpec, run_trial

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


def _all_adapters() -> list[str]:
    from bench import registry

    return registry.available()


@pytest.mark.parametrize("adapter", _all_adapters())
def test_one_thread_runs_repeat_and_seed_free_models_ignore_the_seed(adapter):
    # Published suites run at one thread so that every model is repeatable for its seed;
    # a model declared ``stochastic = False`` runs once per suite, so its seed must not
    # matter at all.
    from bench import registry

    def metrics(seed: int) -> dict:
        record, _ = run_trial(TrialSpec(SMALL, SPLIT, 0, adapter, {}, seed=seed), None)
        assert record["status"] == "ok", record["error"]
        return record["metrics"]

    first = metrics(0)
    assert metrics(0) == first
    if not registry.get(adapter).stochastic:
        assert metrics(1) == first


def test_records_say_when_a_thread_count_makes_them_unrepeatable():
    for adapter, threads, expected in (("lightfm.WARP", 1, True), ("lightfm.WARP", 2, False),
                                       ("implicit.ALS", 2, True)):
        record, _ = run_trial(TrialSpec(SMALL, SPLIT, 0, adapter, {}, threads=threads), None)
        assert record["status"] == "ok", record["error"]
        assert record["reproducible"] is expected, (adapter, threads)
