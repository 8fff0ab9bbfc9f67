"""Convergence curves come from one fit, scored after every iteration."""

import pytest

from bench.evaluation.evaluate import MetricSpec
from bench.execution.trial import TrialSpec, run_trial
from bench.splitting.splits import SplitSpec

SPLIT = SplitSpec("random", test_fraction=0.2, seed=0)


@pytest.mark.parametrize(("adapter", "metric"), [("recbench.ALS", "rmse"),
                                                 ("recbench.ImplicitALS", "ndcg@10")])
def test_curve_has_one_point_per_iteration_and_ends_at_the_final_model(ml100k, adapter, metric):
    spec = TrialSpec("ml-100k", SPLIT, 0, adapter, {"iterations": 6},
                     metrics=MetricSpec(ks=(10,), curve=metric))
    record, _ = run_trial(spec, None)
    assert record["status"] == "ok", record["error"]
    curve = record["curve"]
    assert curve["metric"] == metric and curve["iteration"] == [1, 2, 3, 4, 5, 6]
    assert len(curve["validation"]) == len(curve["test"]) == 6
    # The last test point is the final model's test metric: the curve is that fit's history.
    assert curve["test"][-1] == pytest.approx(record["metrics"][metric], abs=1e-6)


def test_an_adapter_without_curves_fails_clearly(ml100k):
    spec = TrialSpec("ml-100k", SPLIT, 0, "surprise.SVD", {}, metrics=MetricSpec(curve="rmse"))
    record, _ = run_trial(spec, None)
    assert record["status"] == "failed" and "cannot record a convergence curve" in record["error"]
