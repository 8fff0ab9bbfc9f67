"""`bench.results` for reading across rows and libraries (issue 26): a row key that never
pools two leaderboard rows, common parameter names beside the libraries' own, a clear error
for a path that does not exist, and ``started_at`` as a datetime."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from bench import results
from bench.execution import store

BASELINE = Path(__file__).parent.parent / "results" / "baseline"


def test_load_of_a_missing_path_is_an_error_not_an_empty_frame(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results at /nonexistent"):
        results.load("/nonexistent")
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        results.load([BASELINE, tmp_path / "nothing-here"])
    with pytest.raises(FileNotFoundError):
        results.table(tmp_path / "nothing-here")


def test_started_at_is_a_utc_datetime_column():
    frame = results.load(BASELINE)
    assert isinstance(frame["started_at"].dtype, pd.DatetimeTZDtype)
    assert str(frame["started_at"].dt.tz) == "UTC"
    first = store.load([BASELINE])[0]
    row = frame.set_index("trial_id").loc[first["trial_id"]]
    assert row["started_at"] == pd.Timestamp(first["started_at"])


def test_common_parameter_names_sit_beside_the_libraries_own():
    frame = results.load(BASELINE).set_index("adapter")
    expect = {  # adapter: {common name: the library's own parameter}
        "surprise.SVD": {"factors": "n_factors", "regularization": "reg_all",
                         "iterations": "n_epochs", "learning_rate": "lr_all"},
        "lightfm.WARP": {"factors": "no_components", "iterations": "epochs",
                         "learning_rate": "learning_rate"},
        "implicit.ALS": {"factors": "factors", "regularization": "regularization",
                         "iterations": "iterations"},
        "scipy.PureSVD": {"factors": "rank"},
        "recbench.ALS": {"factors": "factors", "regularization": "reg_factors",
                         "iterations": "iterations"},
    }
    for adapter, names in expect.items():
        row = frame.loc[adapter]
        for common, own in names.items():
            assert row[f"common.{common}"] == row[f"params.{own}"], (adapter, common)
    assert frame.loc["surprise.SVD", "common.factors"] == 100
    assert frame.loc["lightfm.WARP", "common.factors"] == 10
    # no such parameter: no value, rather than a forced one
    assert pd.isna(frame.loc["implicit.CosineKNN", "common.factors"])
    assert pd.isna(frame.loc["lightfm.WARP", "common.regularization"])


def test_the_row_key_never_pools_two_leaderboard_rows(tmp_path):
    records = store.load([BASELINE])
    als = next(r for r in records if r["adapter"] == "implicit.ALS")
    other = copy.deepcopy(als)  # same adapter and label, another alpha: another row
    other["trial_id"] += "-alpha2"
    other["params"]["alpha"] = 2.0
    other["spec_params"] = {"alpha": 2.0}
    other["metrics"]["ndcg@10"] = als["metrics"]["ndcg@10"] + 0.1
    for rec in [*records, other]:
        rec = {k: v for k, v in rec.items() if k != "checksum"}
        store.append(store.run_file(tmp_path, "ci"), rec)
    frame = results.load(tmp_path)
    implicit = frame[frame["adapter"] == "implicit.ALS"]
    assert implicit.groupby(["adapter", "label"]).ngroups == 1  # what the issue averaged
    assert implicit["row_key"].nunique() == 2
    assert implicit["table_key"].nunique() == 1
    means = frame.groupby("row_key")["ndcg@10"].mean()
    assert sorted(means[implicit["row_key"]]) == sorted(implicit["ndcg@10"])
    # the same keys as the leaderboard's rows
    table = results.table(tmp_path)
    assert set(table["row_key"]) == set(frame["row_key"])
    assert len(table) == frame["row_key"].nunique() == len(records) + 1
