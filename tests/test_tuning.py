"""Tuning reads train rows only: changing every test rating changes nothing it does."""

import json

import numpy as np
import pytest

from bench.data.datasets import load
from bench.execution.suites import Suite, expand, tune_key, tuned_params
from bench.execution.trial import TrialSpec, run_trial
from bench.splitting import splits

SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 0}


def write_csv(path, users, items, ratings):
    rows = zip(users, items, ratings, strict=True)
    lines = ["user,item,rating"] + [f"{u},{i},{r:g}" for u, i, r in rows]
    path.write_text("\n".join(lines) + "\n")


def random_csv(path, seed: int, n_users: int, n_items: int, n: int):
    """``n`` distinct random (user, item) pairs with ratings 1..5 written to ``path`` and
    loaded; returns the generator (for more draws), the columns and the dataset."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = keys // n_items, keys % n_items
    ratings = rng.integers(1, 6, size=len(keys)).astype(float)
    write_csv(path, users, items, ratings)
    return rng, users, items, ratings, load(f"csv:{path}")


def test_validation_trials_never_read_test_rows(tmp_path):
    rng, users, items, ratings, data_a = random_csv(tmp_path / "a.csv", 0, 200, 100, 4000)
    fold = splits.fold_rows(splits.assign(data_a.ratings, splits.SplitSpec(**SPLIT)), 0)
    # Same rows, every test rating replaced: only test rows differ between the two files.
    test = data_a.ratings.take(fold.test_rows)
    test_pairs = set(zip(data_a.user_ids[test.users], data_a.item_ids[test.items], strict=True))
    in_test = np.array([(u, i) in test_pairs for u, i in zip(users, items, strict=True)])
    changed = np.where(in_test, ratings % 5 + 1, ratings)
    write_csv(tmp_path / "b.csv", users, items, changed)
    data_b = load(f"csv:{tmp_path / 'b.csv'}")
    assert (data_a.ratings.ratings != data_b.ratings.ratings).sum() == in_test.sum() > 0

    def run(path, stage):
        spec = TrialSpec(f"csv:{path}", splits.SplitSpec(**SPLIT), 0, "scipy.SVD", {}, stage=stage)
        record, _ = run_trial(spec, None)
        assert record["status"] == "ok", record["error"]
        return record["metrics"]

    assert run(tmp_path / "a.csv", "validation") == run(tmp_path / "b.csv", "validation")
    assert run(tmp_path / "a.csv", "test") != run(tmp_path / "b.csv", "test")


def test_tuning_picks_the_best_validation_setting():
    suite = Suite("t", "", "", ({
        "datasets": ["synthetic:users=400,items=300,ratings=8000,seed=1"],
        "splits": [SPLIT],
        "adapters": ["scipy.PureSVD"],
        "metrics": {"ks": [10]},
        "tune": {"metric": "ndcg@10", "budget": 3},
    },))
    specs = expand(suite, threads=1)
    validation = [s for s in specs if s.stage == "validation"]
    assert len(validation) >= 2 and all(s.fold == 0 for s in validation)
    records = {}
    for s in validation:
        rec, _ = run_trial(s, None)
        assert rec["status"] == "ok", rec["error"]
        records[rec["trial_id"]] = rec
    chosen, summary = tuned_params(suite, records)
    (entry,) = summary
    scores = [r["metrics"]["ndcg@10"] for r in records.values()]
    assert entry["validation_score"] == max(scores)
    tuned = expand(suite, threads=1, tuned=chosen)
    assert [s.label for s in tuned] == ["tuned"]
    assert tuned[0].params == entry["params"]


def _tuning_suite(data: str, split: dict) -> Suite:
    return Suite("nested", "", "", ({
        "datasets": [data],
        "splits": [split],
        "adapters": ["baseline.Bias"],
        "metrics": {"ks": [10]},
        "tune": {"metric": "rmse", "budget": 3},
    },))


@pytest.mark.parametrize("split", [
    {"method": "kfold", "n_folds": 3, "seed": 0},
    {"method": "stratified", "test_fraction": 0.25, "seed": 0},
])
def test_each_fold_tunes_on_its_own_train_rows_only(tmp_path, split):
    # Nested tuning: fold f's tuned row uses the choice made on a validation slice of fold
    # f's own train rows.  With one shared choice (made on fold 0's validation slice) the
    # test rows of folds 1..k-1 would have chosen the parameters scored on them.
    rng, users, items, ratings, data_a = random_csv(tmp_path / "a.csv", 3, 150, 80, 3000)
    spec = splits.SplitSpec.from_dict(split)
    fold_of_row = splits.assign(data_a.ratings, spec)
    suite_a = _tuning_suite(f"csv:{tmp_path / 'a.csv'}", split)
    specs = expand(suite_a, threads=1)
    validation = [s for s in specs if s.stage == "validation"]
    assert sorted({s.fold for s in validation}) == spec.folds

    def choose(suite, fold):
        records = {}
        for s in expand(suite, threads=1):
            if s.stage == "validation" and s.fold == fold:
                rec, _ = run_trial(s, None)
                assert rec["status"] == "ok", rec["error"]
                records[rec["trial_id"]] = rec
        chosen, _ = tuned_params(suite, records)
        (params,) = chosen.values()
        return params, sorted((json.dumps(r["params"], sort_keys=True), r["metrics"]["rmse"])
                              for r in records.values())

    for fold in spec.folds:
        rows = splits.fold_rows(fold_of_row, fold)
        inner = splits.validation_rows(data_a.ratings, rows.train_rows, spec)
        assert not np.intersect1d(inner.test_rows, rows.test_rows).size
        assert not np.intersect1d(inner.train_rows, rows.test_rows).size
        # Every test rating of this fold changed: its validation scores and choice stay.
        test = data_a.ratings.take(rows.test_rows)
        pairs = set(zip(data_a.user_ids[test.users], data_a.item_ids[test.items], strict=True))
        in_test = np.array([(u, i) in pairs for u, i in zip(users, items, strict=True)])
        path_b = tmp_path / f"b{fold}.csv"
        write_csv(path_b, users, items, np.where(in_test, ratings % 5 + 1, ratings))
        assert choose(suite_a, fold) == choose(_tuning_suite(f"csv:{path_b}", split), fold)


def test_tuned_rows_use_their_own_folds_choice():
    split = {"method": "kfold", "n_folds": 3, "seed": 0}
    suite = _tuning_suite("synthetic:users=100,items=50,ratings=2000,seed=1", split)
    chosen = {
        tune_key(suite.runs[0]["datasets"][0], splits.SplitSpec.from_dict(split).to_dict(),
                 "baseline.Bias", 0, fold): {"reg_user": float(5 + fold)}
        for fold in range(3)
    }  # fmt: skip
    tuned = expand(suite, threads=1, tuned=chosen)
    assert {s.fold: s.params["reg_user"] for s in tuned} == {0: 5.0, 1: 6.0, 2: 7.0}
    assert all(s.label == "tuned" for s in tuned)
