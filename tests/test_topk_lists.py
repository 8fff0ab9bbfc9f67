"""Each trial's top-K lists are stored (raw ids, checksummed) and read back by
``bench.results.topk``; a metric recomputed from them with a few lines of numpy equals the
record's.  Driven through the real CLI on ML-100k (the recbole wheel fallback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bench
from bench.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SUITE = """
description = "top-K lists test"
[[run]]
datasets = ["ml-100k"]
splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]
adapters = ["baseline.Bias", "baseline.Popularity", "baseline.UserMean"]
metrics = { ks = [5, 10], threshold = 4.0 }
time_limit = 300
"""


def run_cli(tmp: Path, *extra: str) -> list[dict]:
    suite = tmp / "topk.toml"
    suite.write_text(SUITE)
    subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
                    str(tmp / "res"), "--threads", "1", "--no-report", *extra],
                   check=True, cwd=ROOT, capture_output=True, timeout=900)
    lines = (tmp / "res" / "runs" / "topk.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("topk")
    return tmp / "res", run_cli(tmp)


def test_record_names_a_checksummed_file_of_the_largest_k(ran):
    res, records = ran
    by = {r["adapter"]: r for r in records}
    assert by["baseline.Bias"]["schema_minor"] >= 2
    for name in ("baseline.Bias", "baseline.Popularity"):
        rec = by[name]
        assert rec["topk_k"] == 10 and rec["topk_file"] == f"runs/topk/{rec['trial_id']}.npz"
        assert len(rec["topk_sha256"]) == 64 and (res / rec["topk_file"]).is_file()
    assert "topk_file" not in by["baseline.UserMean"]  # a rating-only model ranks nothing


def test_ndcg_and_recall_recomputed_from_stored_lists_equal_the_record(ran):
    res, records = ran
    rec = next(r for r in records if r["adapter"] == "baseline.Bias")
    lists = bench.results.topk(res, trial_id=rec["trial_id"])
    assert list(lists.columns[-5:]) == ["user", "rank", "item", "user_index", "item_index"]
    # the stored test split (the fold assignment the run wrote under splits/), read by hand
    data = bench.load_dataset("ml-100k")
    [split_file] = (res / "splits").glob("*.npz")
    with np.load(split_file) as z:
        test = z["fold_of_row"] == rec["fold"]
    users = data.user_ids[data.ratings.users[test]]
    items = data.item_ids[data.ratings.items[test]]
    liked = data.ratings.ratings[test] >= 4.0
    relevant = set(zip(users[liked].tolist(), items[liked].tolist(), strict=True))
    n_rel = {}
    for u, _ in relevant:
        n_rel[u] = n_rel.get(u, 0) + 1
    # numpy: DCG over the stored ranks, ideal DCG over min(relevant, 10) ranks
    k = 10
    hit = np.array([(u, i) in relevant for u, i in zip(lists.user, lists.item, strict=True)])
    gain = hit / np.log2(lists["rank"].to_numpy() + 1)
    user_codes, row = np.unique(lists.user.to_numpy(), return_inverse=True)
    dcg = np.bincount(row, weights=gain)
    hits = np.bincount(row, weights=hit.astype(float))
    rel = np.array([n_rel[u] for u in user_codes.tolist()])
    discounts = 1 / np.log2(np.arange(2, k + 2))
    idcg = np.cumsum(discounts)[np.minimum(rel, k) - 1]
    assert len(user_codes) == rec["metrics"]["n_eval_users"] == len(n_rel)
    assert float(np.mean(dcg / idcg)) == pytest.approx(rec["metrics"]["ndcg@10"], abs=1e-6)
    assert float(np.mean(hits / rel)) == pytest.approx(rec["metrics"]["recall@10"], abs=1e-6)
    # ... and at the smaller cut-off, from the first 5 ranks of the same lists
    first5 = (lists["rank"] <= 5).to_numpy()
    dcg5 = np.bincount(row[first5], weights=gain[first5], minlength=len(user_codes))
    idcg5 = np.cumsum(discounts[:5])[np.minimum(rel, 5) - 1]
    assert float(np.mean(dcg5 / idcg5)) == pytest.approx(rec["metrics"]["ndcg@5"], abs=1e-6)


def test_lists_hold_raw_ids_and_exclude_train_items(ran):
    res, records = ran
    rec = next(r for r in records if r["adapter"] == "baseline.Popularity")
    lists = bench.results.topk(res, rec["trial_id"])
    data = bench.load_dataset("ml-100k")
    np.testing.assert_array_equal(data.user_ids[lists.user_index], lists.user)
    np.testing.assert_array_equal(data.item_ids[lists.item_index], lists.item)
    assert lists.groupby("user").size().max() == 10
    everything = bench.results.topk(res)
    assert set(everything.adapter) == {"baseline.Bias", "baseline.Popularity"}


def test_damaged_file_is_refused_and_resume_reruns_the_trial(tmp_path):
    records = run_cli(tmp_path, "--adapter", "baseline.Popularity")
    [rec] = records
    path = tmp_path / "res" / rec["topk_file"]
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    with pytest.raises(UserError, match="sha256"):
        bench.results.topk(tmp_path / "res", trial_id=rec["trial_id"])
    again = run_cli(tmp_path, "--adapter", "baseline.Popularity")
    assert len(again) == 2 and again[-1]["metrics"] == rec["metrics"]
    assert len(bench.results.topk(tmp_path / "res", rec["trial_id"])) > 0


def test_no_topk_turns_it_off(tmp_path):
    [rec] = run_cli(tmp_path, "--adapter", "baseline.Popularity", "--no-topk")
    assert "topk_file" not in rec and not (tmp_path / "res" / "runs" / "topk").exists()
    with pytest.raises(UserError, match="no top-K lists"):
        bench.results.topk(tmp_path / "res", trial_id=rec["trial_id"])
    assert bench.results.topk(tmp_path / "res").empty
