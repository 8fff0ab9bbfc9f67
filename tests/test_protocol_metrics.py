"""Beyond-accuracy and sampled metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from bench.data.model import TrainSet
from bench.evaluation import metrics
from bench.evaluation.evaluate import MetricSpec, evaluate
from bench.execution.trial import build_adapter


def test_novelty_and_average_popularity():
    counts = np.array([4, 1, 0])  # item 2 has no train rows: counted as one user
    top = np.array([[0, 1], [2, -1]])
    np.testing.assert_allclose(metrics.novelty(top, counts, n_users=4), [1.0, 2.0])
    np.testing.assert_allclose(metrics.average_popularity(top, counts), [2.5, 0.0])


def test_intra_list_diversity_by_genre():
    # items 0 and 1: genre A; item 2: genre B; item 3: A and B; item 4: no genre
    f = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32))
    top = np.array([[0, 1, 2], [0, 3, -1], [4, 0, -1], [2, -1, -1]])
    want = [2 / 3, 1 - 1 / math.sqrt(2), 1.0, math.nan]
    np.testing.assert_allclose(metrics.intra_list_diversity(top, f, block=2), want)


def test_gini_of_exposure():
    assert metrics.gini_exposure(np.array([[3], [3], [3], [3]]), 4) == pytest.approx(0.75)
    assert metrics.gini_exposure(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)


def test_sampled_rank_breaks_ties_in_the_fixed_order():
    pos = np.array([0.5, 0.5, 0.9])
    neg = np.array([[0.6, 0.5, 0.1], [0.5, 0.5, 0.5], [0.1, 0.2, 0.3]])
    pos_tie = np.array([5, 0, 1])
    neg_tie = np.array([[1, 2, 9], [3, 4, 6], [0, 2, 3]])
    # user 0: one above, one tie ranked first (tie rank 2 < 5); user 1: ties all after
    np.testing.assert_array_equal(metrics.sampled_rank(pos, neg, pos_tie, neg_tie), [3, 1, 1])
    m = metrics.sampled_metrics(np.array([3, 1, 12, 1]), np.array([0, 0, 2, 5]),
                                np.array([0, 2, 5]), k=10)
    np.testing.assert_allclose(m["sampled_hit_rate"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(m["sampled_ndcg"], [(0.5 + 1.0) / 2, 0.0, 1.0])


def test_negatives_avoid_every_interacted_item_and_depend_on_the_fold_only():
    n_items = 150
    interacted = np.unique(np.array([0 * n_items + i for i in range(45)]
                                    + [1 * n_items + 3, 1 * n_items + 7]))
    users = np.array([0, 0, 1])
    a = metrics.sample_negatives(users, interacted, n_items, 100, seed=0)
    b = metrics.sample_negatives(users, interacted, n_items, 100, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 100)
    assert (a[:2] >= 45).all()  # user 0 has items 0..44
    assert not np.isin(a[2], [3, 7]).any()


def test_sampled_protocol_ranks_higher_than_the_full_catalogue():
    from bench.data import datasets
    from bench.splitting import splits

    ds = datasets.load("synthetic:users=300,items=400,ratings=9000,seed=0")
    spec = splits.SplitSpec.from_dict({"method": "leave_last", "seed": 0})
    fold = splits.fold_rows(splits.assign(ds.ratings, spec), 0)
    train, test = ds.ratings.take(fold.train_rows), ds.ratings.take(fold.test_rows)
    ms = MetricSpec.from_dict({"ks": [10], "threshold": None, "sampled_negatives": 100,
                               "beyond_accuracy": True})
    assert ms.to_dict()["sampled_negatives"] == 100
    out = {}
    for name in ("baseline.Popularity", "baseline.Random"):
        model = build_adapter(name, {}, 0, 1).fit(TrainSet(train, ds.rating_scale,
                                                            ds.item_features))
        out[name] = evaluate(model, train, test, ms, ds.item_features).metrics
    pop = out["baseline.Popularity"]
    # 1 relevant among 101 candidates is far easier than among ~400 unseen items
    assert pop["sampled_hit_rate@10"] > pop["hit_rate@10"]
    # Random: about 10 / 101 of relevant items land in the sampled top 10
    assert out["baseline.Random"]["sampled_hit_rate@10"] == pytest.approx(10 / 101, abs=0.05)
    assert pop["arp@10"] > out["baseline.Random"]["arp@10"]  # popularity is popular
    assert pop["novelty@10"] < out["baseline.Random"]["novelty@10"]
    assert pop["gini@10"] > out["baseline.Random"]["gini@10"]
    assert 0.0 < pop["ild@10"] <= 1.0
    with pytest.raises(Exception, match="sampled_negatives must be a positive integer"):
        MetricSpec.from_dict({"sampled_negatives": 0})


def test_findings_name_the_pairs_the_sampled_protocol_reverses():
    from bench.reporting import protocol

    def rec(adapter, split, full, sampled):
        return {"trial_id": adapter + split, "adapter": adapter, "dataset": "ml-100k",
                "split": {}, "fold": 0, "status": "ok", "group": "ablation-protocol",
                "split_label": split, "metrics": {"ndcg@10": full, "sampled_ndcg@10": sampled},
                "intervals": {"ndcg@10": 0.01}}

    recs = [rec("a.A", "random 80/20", 0.30, 0.50), rec("b.B", "random 80/20", 0.20, 0.60),
            rec("c.C", "random 80/20", 0.10, 0.40),
            rec("a.A", "temporal 80/20", 0.10, 0.50), rec("b.B", "temporal 80/20", 0.20, 0.60)]
    text = protocol.findings(recs)
    assert ("With 100 sampled negatives b.B ranks above a.A (0.6000 vs 0.5000); with the full "
            "catalogue a.A is ahead by 0.1000 NDCG@10 (0.3000 vs 0.2000; 95% interval over "
            "users ±0.0100 each).") in text
    assert "Kendall's tau between the two orders: 0.33; 1 of 3 pairs reversed." in text
    assert "- random 80/20 vs temporal 80/20: Kendall's tau -1.00, 1 pair(s) reversed" in text
    assert protocol.findings([{**recs[0], "group": "quick"}]) == ""


def test_negatives_are_distinct_unrated_and_seeded_per_fold():
    # RecBole / NCF: 100 DISTINCT items the user never rated, drawn without replacement
    rng = np.random.default_rng(1)
    n_items = 300
    users = np.repeat(np.arange(40), 3)
    interacted = np.unique(np.concatenate([
        u * n_items + rng.choice(n_items, size=120, replace=False) for u in range(40)]))
    fold0 = metrics.sample_negatives(users, interacted, n_items, 100, seed=(0, 0))
    assert fold0.shape == (len(users), 100)
    assert all(len(set(row)) == 100 for row in fold0.tolist())  # no repeats in a list
    keys = users[:, None].astype(np.int64) * n_items + fold0
    assert not np.isin(keys, interacted).any()  # never a rated item
    again = metrics.sample_negatives(users, interacted, n_items, 100, seed=(0, 0))
    np.testing.assert_array_equal(fold0, again)  # the same for every model of a fold
    fold1 = metrics.sample_negatives(users, interacted, n_items, 100, seed=(0, 1))
    assert (fold0 != fold1).any()  # another fold, other draws
    # a user with fewer than 100 unrated items cannot get 100 distinct negatives
    full = np.arange(250, dtype=np.int64)
    with pytest.raises(ValueError, match="distinct"):
        metrics.sample_negatives(np.array([0]), full, n_items, 100)


def test_a_trial_draws_its_negatives_with_its_folds_seed():
    from bench.data import datasets
    from bench.execution.trial import TrialSpec, run_trial
    from bench.splitting import splits

    name = "synthetic:users=120,items=300,ratings=3000,seed=2"
    split = splits.SplitSpec.from_dict({"method": "kfold", "n_folds": 2, "seed": 3})
    ms = MetricSpec.from_dict({"ks": [10], "threshold": None, "sampled_negatives": 50})
    spec = TrialSpec(dataset=name, split=split, fold=1, adapter="baseline.Popularity",
                     metrics=ms)
    record, per_user = run_trial(spec, None)
    assert record["status"] == "ok", record["error"]
    ds = datasets.load(name)
    fold = splits.fold_rows(splits.assign(ds.ratings, split), 1)
    train, test = ds.ratings.take(fold.train_rows), ds.ratings.take(fold.test_rows)
    model = build_adapter("baseline.Popularity", {}, 0, 1).fit(TrainSet(train, ds.rating_scale))

    def sampled(seed):
        return evaluate(model, train, test, ms, seed=seed).per_user["sampled_ndcg@10"]

    np.testing.assert_array_equal(per_user["sampled_ndcg@10"], sampled((3, 1)))
    assert not np.array_equal(sampled((3, 1)), sampled(0))  # not one seed for every fold


def test_cold_test_users_are_counted_and_warm_metrics_recorded():
    # a temporal cut leaves test users without train rows: the record says how many and
    # gives every ranking metric over the warm users beside the overall one
    from bench.execution.trial import TrialSpec, run_trial
    from bench.splitting.splits import SplitSpec

    spec = TrialSpec(dataset="synthetic:users=200,items=150,ratings=4000,seed=4",
                     split=SplitSpec.from_dict({"method": "temporal", "test_fraction": 0.2}),
                     fold=0, adapter="baseline.Popularity",
                     metrics=MetricSpec.from_dict({"ks": [10], "threshold": None}))
    record, per_user = run_trial(spec, None)
    assert record["status"] == "ok", record["error"]
    cold = per_user["train_count"] == 0
    assert cold.any() and (~cold).any()
    got = record["cold_users"]
    assert got["n"] == int(cold.sum())
    assert got["share"] == pytest.approx(cold.mean(), abs=1e-6)
    assert got["warm_metrics"]["ndcg@10"] == pytest.approx(
        per_user["ndcg@10"][~cold].mean(), abs=1e-6)


def test_findings_show_the_cold_share_and_the_warm_user_order():
    from bench.reporting import protocol

    def rec(adapter, split, full, warm, n_cold):
        return {"trial_id": adapter + split, "adapter": adapter, "dataset": "ml-100k",
                "split": {}, "fold": 0, "status": "ok", "group": "ablation-protocol",
                "split_label": split, "metrics": {"ndcg@10": full},
                "cold_users": {"n": n_cold, "share": n_cold / 301,
                               "warm_metrics": {"ndcg@10": warm}}}

    recs = [rec("a.A", "temporal 80/20", 0.45, 0.30, 192),
            rec("b.B", "temporal 80/20", 0.44, 0.40, 192),
            rec("a.A", "random 80/20", 0.30, 0.30, 0), rec("b.B", "random 80/20", 0.35, 0.35, 0)]
    text = protocol.findings(recs)
    assert "192 test users (63.8%) have no train rows" in text
    assert "| a.A | 0.4500 | 1 | 0.3000 | 2 |" in text
    assert "over warm users only" in text
    assert "Every test user has train rows" in text
