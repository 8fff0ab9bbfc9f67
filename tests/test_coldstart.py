"""Cold-start protocol end to end: which path each model takes, and what fold-in means."""

import numpy as np
import pytest

from bench.data.model import TrainSet
from bench.execution.registry import get
from bench.execution.trial import TrialSpec, run_trial
from bench.splitting import splits

COLD = splits.SplitSpec("cold_users", cold_fraction=0.1, n_reveal=5, seed=0)


@pytest.mark.parametrize(
    ("adapter", "path"),
    [("recbench.ALS", "fold_in"), ("implicit.ALS", "fold_in"), ("surprise.SVD", "refit"),
     ("baseline.Popularity", "refit")],
)
def test_each_model_takes_its_declared_path(ml100k, adapter, path):
    record, _ = run_trial(TrialSpec("ml-100k", COLD, 0, adapter, {}), None)
    assert record["status"] == "ok", record["error"]
    assert record["cold_path"] == path
    assert record["metrics"]["n_eval_users"] > 50
    if path == "fold_in":
        assert record["fold_in_seconds"] is not None


@pytest.mark.parametrize("adapter", ["recbench.ALS", "recbench.ImplicitALS", "implicit.ALS"])
def test_fold_in_scores_a_new_user_from_its_revealed_ratings_only(ml100k, adapter):
    fold = splits.fold_rows(splits.assign(ml100k.ratings, COLD), 0)
    warm = np.setdiff1d(fold.train_rows, fold.revealed_rows)
    revealed = ml100k.ratings.take(fold.revealed_rows)
    model = get(adapter)(threads=1).fit(
        TrainSet(ml100k.ratings.take(warm), ml100k.rating_scale, ml100k.item_features)
    )
    user = int(revealed.users[0])
    before = model.score(np.array([user]))
    model.fold_in_users(revealed)
    after = model.score(np.array([user]))
    assert not np.allclose(before, after)  # the revealed ratings changed the user's scores
    if hasattr(model, "fold_in"):  # recbench: the same vector as a one-user fold-in
        mine = revealed.users == user
        vector = model.fold_in(revealed.items[mine], revealed.ratings[mine])
        np.testing.assert_allclose(after, model.score_folded(vector[None, :]), rtol=1e-5)
