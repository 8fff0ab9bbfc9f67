"""Tuning reads train rows only: changing every test rating changes nothing it does."""


import numpy as np

from bench import splits
from bench.datasets import load
from bench.suites import Suite, expand, tuned_params
from bench.trial import TrialSpec, run_trial

SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 0}


def write_csv(path, users, items, ratings):
    rows = zip(users, items, ratings, strict=True)
    lines = ["user,item,rating"] + [f"{u},{i},{r:g}" for u, i, r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_validation_trials_never_read_test_rows(tmp_path):
    rng = np.random.default_rng(0)
    keys = rng.choice(200 * 100, size=4000, replace=False)
    users, items = keys // 100, keys % 100
    ratings = rng.integers(1, 6, size=len(keys)).astype(float)
    write_csv(tmp_path / "a.csv", users, items, ratings)
    data_a = load(f"csv:{tmp_path / 'a.csv'}")
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
        spec = TrialSpec(f"csv:{path}", SPLIT, 0, "scipy.SVD", {}, stage=stage)
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
