"""The markdown leaderboard's labels, from synthetic records (no trial is run)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from bench.execution import record, registry
from bench.reporting import leaderboard

RANDOM = {"method": "random", "seed": 0, "test_fraction": 0.2}
OPTIONS = {"ks": [10], "threshold": 4.0}


def rec(
    adapter: str,
    ndcg: float | None = 0.2,
    *,
    rmse: float | None = None,
    seed: int = 0,
    fold: int = 0,
    threads: int = 1,
    commit: str = "aaaaaaaaaaaa",
    stage: str = "test",
    label: str = "defaults",
    params: dict | None = None,
    split: dict | None = None,
    options: dict | None = None,
    half: float = 0.01,
) -> dict:
    metrics = {}
    if ndcg is not None:
        metrics["ndcg@10"] = ndcg
    if rmse is not None:
        metrics["rmse"] = rmse
    return {
        "trial_id": f"{adapter}|{seed}|{fold}|{stage}|{params}|{threads}",
        "suite": "s",
        "group": "s",
        "dataset": "synthetic",
        "split": split or RANDOM,
        "split_label": "random 80/20",
        "fold": fold,
        "adapter": adapter,
        "label": label,
        "stage": stage,
        "params": params or {},
        "seed": seed,
        "threads": threads,
        "metric_options": options or OPTIONS,
        "status": "ok",
        "metrics": metrics,
        "intervals": {k: half for k in metrics},
        "fit_seconds": 0.5,
        "predict_seconds": 0.01 if rmse is not None else None,
        "recommend_seconds": 0.1,
        "env": {"git_commit": commit, "cpu": "cpu", "cores": 2, "memory_gb": 4, "python": "3"},
    }


def needs(*names: str) -> None:
    missing = [n for n in names if n not in registry.available()]
    if missing:
        pytest.skip(f"adapter(s) not available here: {', '.join(missing)}")


def row(lines: list[str], adapter: str) -> list[str]:
    """Cells of the table row of ``adapter`` (model and params cells first)."""
    line = next(li for li in lines if li.startswith(f"| `{adapter}`"))
    return [c.strip() for c in line.strip("|").split("|")]


def header(lines: list[str]) -> list[str]:
    return [c.strip() for c in lines[0].strip("|").split("|")]


def cell(lines: list[str], adapter: str, column: str) -> str:
    return row(lines, adapter)[header(lines).index(column)]


def test_side_information_rows_are_marked_and_pure_cf_best_is_italic():
    needs("lightfm.WARP", "lightfm.WARP-features")
    lines = leaderboard.render_table([
        rec("lightfm.WARP-features", 0.32),
        rec("lightfm.WARP", 0.31),
        rec("baseline.Popularity", 0.20),
    ])
    marked = "`lightfm.WARP-features`" + leaderboard.SIDE_MARK
    assert row(lines, "lightfm.WARP-features")[0] == marked
    assert row(lines, "lightfm.WARP")[0] == "`lightfm.WARP`"
    assert "◆" not in " ".join(row(lines, "lightfm.WARP"))
    assert cell(lines, "lightfm.WARP-features", "NDCG@10") == "**0.3200 ± 0.0100**"
    assert cell(lines, "lightfm.WARP", "NDCG@10") == "*0.3100 ± 0.0100*"  # best pure CF
    assert cell(lines, "baseline.Popularity", "NDCG@10") == "0.2000 ± 0.0100"


def test_pure_cf_best_is_only_bold_when_it_is_the_best_overall():
    lines = leaderboard.render_table([
        rec("baseline.Content", 0.10),  # side information (genres), always registered
        rec("recbench.GenreALS", 0.15),
        rec("baseline.Popularity", 0.20),
    ])
    assert row(lines, "baseline.Content")[0].endswith(leaderboard.SIDE_MARK)
    assert row(lines, "recbench.GenreALS")[0].endswith(leaderboard.SIDE_MARK)
    assert cell(lines, "baseline.Popularity", "NDCG@10") == "**0.2000 ± 0.0100**"
    assert not any(c.startswith("*") and not c.startswith("**")
                   for li in lines[2:] for c in li.split("|"))


def test_an_adapter_no_longer_registered_does_not_break_the_table():
    lines = leaderboard.render_table([rec("gone.Model", 0.3), rec("baseline.Popularity", 0.2)])
    assert row(lines, "gone.Model")[0] == "`gone.Model`"
    assert any("Side information unknown for `gone.Model`" in li for li in lines)


def test_several_seeds_pool_folds_and_the_interval_is_over_seeds():
    split = {"method": "kfold", "seed": 0, "n_folds": 2}
    values = {0: (0.30, 0.32), 1: (0.34, 0.36), 2: (0.26, 0.28)}  # seed: per-fold NDCG
    recs = [rec("implicit.BPR", v, seed=s, fold=f, split=split)
            for s, vs in values.items() for f, v in enumerate(vs)]
    recs += [rec("baseline.Popularity", v, fold=f, split=split) for f, v in enumerate((.2, .3))]
    lines = leaderboard.render_table(recs)
    seed_means = [sum(vs) / 2 for vs in values.values()]
    mean = sum(seed_means) / 3
    sd = math.sqrt(sum((m - mean) ** 2 for m in seed_means) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert "seeds" in header(lines)
    assert cell(lines, "implicit.BPR", "NDCG@10") == f"**{mean:.4f} ± {half:.4f}**"
    assert cell(lines, "implicit.BPR", "seeds") == "3"
    assert cell(lines, "implicit.BPR", "folds") == "2/2"  # folds, not (seed, fold) records
    # One seed: Student-t over folds, exactly as before.
    pop = record.aggregate([r for r in recs if r["adapter"] == "baseline.Popularity"],
                                "ndcg@10")
    assert cell(lines, "baseline.Popularity", "NDCG@10") == f"{pop[0]:.4f} ± {pop[1]:.4f}"
    assert cell(lines, "baseline.Popularity", "seeds") == "1"


def test_one_seed_tables_are_unchanged_and_have_no_seeds_column():
    lines = leaderboard.render_table([rec("implicit.BPR", 0.3), rec("baseline.Popularity", 0.2)])
    assert header(lines)[-1] == "folds" and "seeds" not in header(lines)
    assert cell(lines, "implicit.BPR", "NDCG@10") == "**0.3000 ± 0.0100**"
    assert record.aggregate([rec("x.Y", 0.3)], "ndcg@10") == (0.3, 0.01)


def test_header_lists_every_commit_and_says_when_mixed():
    one = leaderboard.env_summary([rec("a.B", commit="c1"), rec("a.C", commit="c1")])
    assert "- recbench commit: c1 (2 records)" in one
    mixed = leaderboard.env_summary([
        rec("a.B", commit="c1"), rec("a.C", commit="c1"), rec("a.D", commit="c2-dirty"),
    ])
    line = next(li for li in mixed if "commit" in li)
    assert "records come from 2 commits (mixed)" in line
    assert "c1 (2 records)" in line and "c2-dirty (1 record)" in line


def test_candidate_settings_are_counted_per_model():
    records = [rec("implicit.ALS", 0.3, label="tuned"), rec("lightfm.WARP", 0.3, label="tuned")]
    for fold in (0, 1):  # 13 distinct settings of implicit.ALS per fold
        records += [rec("implicit.ALS", 0.2, stage="validation", fold=fold,
                        params={"factors": n}) for n in range(13)]
    # lightfm.WARP: 9 settings on fold 0, 13 on fold 1 (a range); a repeat is not counted
    records += [rec("lightfm.WARP", 0.2, stage="validation", params={"k": n}) for n in range(9)]
    records += [rec("lightfm.WARP", 0.2, stage="validation", fold=1, params={"k": n})
                for n in range(13)]
    records.append(dict(records[-1], trial_id="repeat"))
    assert leaderboard.candidate_counts(records) == {"implicit.ALS": "13", "lightfm.WARP": "9–13"}
    text = leaderboard.render(records, ["x.jsonl"], "cmd")
    assert "candidate settings per model (per dataset, split and fold): implicit.ALS 13, " \
           "lightfm.WARP 9–13" in text
    assert "best of 26" not in text and "validation" in text
    assert "`library defaults` are the wrapped library's own; `recbench defaults` are ours " \
           "(in-house models, chosen on seeded synthetic data, never on a dataset that is " \
           "scored" in text


def test_thread_counts_head_and_warn():
    same = leaderboard.render_table([rec("a.B", 0.3), rec("a.C", 0.2)])
    assert "fit s" in header(same) and not any("thread counts" in li for li in same)
    two = leaderboard.render_table([rec("a.B", 0.3, threads=2), rec("a.C", 0.2, threads=2)])
    assert "fit s (2 threads)" in header(two)
    mixed = leaderboard.render_table([rec("a.B", 0.3, threads=1), rec("a.C", 0.2, threads=2)])
    assert "fit s" in header(mixed)
    warning = next(li for li in mixed if "thread counts" in li).strip()
    assert warning.startswith("fit times in this table come from different thread counts: "
                              "1 thread (`a.B`); 2 threads (`a.C`)")
    assert "All times at one thread." in leaderboard.render([rec("a.B")], ["x"], "cmd")
    assert "All times at one thread." not in leaderboard.render(
        [rec("a.B"), rec("a.C", threads=2)], ["x"], "cmd")


def test_surprise_times_are_marked_as_scored_by_recbench():
    needs("surprise.SVD")
    lines = leaderboard.render_table([
        rec("surprise.SVD", 0.10, rmse=0.93), rec("baseline.Bias", 0.08, rmse=0.94),
    ])
    assert cell(lines, "surprise.SVD", "predict s").endswith(leaderboard.HARNESS_MARK)
    assert cell(lines, "surprise.SVD", "rank s").endswith(leaderboard.HARNESS_MARK)
    assert not cell(lines, "surprise.SVD", "fit s").endswith(leaderboard.HARNESS_MARK)
    assert "‡" not in " ".join(row(lines, "baseline.Bias"))
    text = leaderboard.render([rec("surprise.SVD", 0.1, rmse=0.93)], ["x"], "cmd")
    assert leaderboard.HARNESS_TEXT in text
    assert "‡ predictions and rankings computed by recbench's vectorised scorer" in text
    assert "‡" not in leaderboard.render([rec("baseline.Bias", 0.1, rmse=0.9)], ["x"], "cmd")


@pytest.mark.parametrize(
    ("split", "options", "expected"),
    [
        ({"method": "stratified", "seed": 0, "test_fraction": 0.25},
         {"ks": [10], "threshold": None}, "not Microsoft Recommenders' benchmark split"),
        ({"method": "item_stratified", "seed": 0, "test_fraction": 0.25},
         {"ks": [10], "threshold": None},
         "Microsoft Recommenders' benchmark protocol (`python_stratified_split(filter_by=\"item\""),
        (RANDOM, OPTIONS, "Cornac's README"),
        ({"method": "kfold", "seed": 0, "n_folds": 5}, OPTIONS, "Surprise's README RMSE/MAE"),
        (dict(RANDOM, train_fraction=0.5), OPTIONS, None),  # a subsampled train set
        (RANDOM, dict(OPTIONS, threshold=3.0), None),
        ({"method": "cold_items", "seed": 0, "cold_fraction": 0.1}, OPTIONS, None),
    ],
)
def test_each_table_says_which_published_figures_are_comparable(split, options, expected):
    note = leaderboard.protocol_note(split, options)
    assert (note is None) if expected is None else (expected in note)
    text = leaderboard.render([rec("a.B", split=split, options=options)], ["x"], "cmd")
    heading = text.index("### synthetic")
    table = text.index("| model |")
    between = text[heading:table]
    assert (expected is None and ">" not in between.split("\n", 1)[1]) or expected in between


def test_legend_states_the_metric_definitions_the_code_uses():
    text = leaderboard.render([rec("a.B")], ["x"], "cmd")
    assert "MAP@K = sum of precision at each hit in the top K / min(#relevant, K)" in text
    assert "Recall@K = hits in the top K / #relevant" in text
    assert "± is over seeds" in text


def test_a_nested_tuned_row_pools_every_fold_whatever_each_chose():
    kfold = {"method": "kfold", "seed": 0, "n_folds": 3}
    recs = [rec("baseline.Bias", rmse=0.95, fold=f, split=kfold, params={"reg_user": 15.0})
            for f in range(3)]
    chosen = [5.0, 5.0, 25.0]
    recs += [rec("baseline.Bias", rmse=0.94 - f / 100, fold=f, split=kfold, label="tuned",
                 params={"reg_user": chosen[f]}) for f in range(3)]
    lines = leaderboard.render_table(recs)
    tuned = [li for li in lines if "tuned" in li]
    assert len(tuned) == 1  # one row, not one per distinct choice
    cells = [c.strip() for c in tuned[0].strip("|").split("|")]
    assert cells[1] == "tuned: reg_user=5.0 (2 folds) / 25.0 (1)"
    assert cells[-1] == "3/3"
    assert cells[2].strip("*").startswith("0.9300")  # mean of 0.94, 0.93, 0.92


def test_hogwild_rows_on_several_threads_are_marked_as_draws():
    needs("lightfm.WARP")
    recs = [rec("lightfm.WARP", 0.30, threads=1), rec("lightfm.WARP", 0.31, threads=2)]
    lines = leaderboard.render_table(recs)
    marked = [li for li in lines if li.startswith("| `lightfm.WARP`")]
    assert sum(leaderboard.DRAW_MARK in li for li in marked) == 1
    assert leaderboard.DRAW_MARK in next(li for li in marked if "threads=2" in li)
    assert any("Hogwild" in p for p in leaderboard.legend(recs))


def test_side_information_follows_what_the_trial_read_not_the_adapter_class():
    # recbench.ALS with genre_prior=True reads genres: its trial records it, and the row is
    # marked and loses the pure-CF best (italic) to the plain ALS row
    from bench.execution.trial import build_adapter

    assert build_adapter("recbench.ALS", {"genre_prior": True}, 0, 1).reads_side_information()
    assert not build_adapter("recbench.ALS", {}, 0, 1).reads_side_information()
    genre = {**rec("recbench.ALS", None, rmse=0.90, params={"genre_prior": True}),
             "side_information": True}
    plain = {**rec("recbench.ALS", None, rmse=0.91, params={"genre_prior": False}),
             "side_information": False}
    lines = leaderboard.render_table([genre, plain])
    rows = [li for li in lines if li.startswith("| `recbench.ALS`")]
    marked = next(li for li in rows if "genre_prior=True" in li)
    assert marked.startswith("| `recbench.ALS`" + leaderboard.SIDE_MARK)
    assert "*0.9100 ± 0.0100*" in next(li for li in rows if "genre_prior=False" in li)
    assert "◆" in "\n".join(leaderboard.legend([genre, plain]))


def test_marks_come_from_the_records_even_when_the_adapter_is_not_installed():
    # a fresh clone without the `neural` extra: torch.MLP's ◆ and the ‡ still show
    lines = leaderboard.render_table([
        {**rec("torch.NotInstalledHere", 0.3), "side_information": True,
         "scored_by_harness": True},
        {**rec("baseline.Popularity", 0.2), "side_information": False},
    ])
    assert row(lines, "torch.NotInstalledHere")[0].endswith(leaderboard.SIDE_MARK)
    assert cell(lines, "torch.NotInstalledHere", "rank s").endswith(leaderboard.HARNESS_MARK)
    assert not any("not registered here" in li for li in lines)


def test_defaults_rows_say_whose_defaults_they_are():
    from bench.execution import registry

    assert registry.get("sklearn.TruncatedSVD").recbench_defaults == ("n_components",)
    assert registry.get("recbench.EASE").defaults_by == "recbench"
    assert registry.get("implicit.ALS").defaults_by == "library"
    lines = leaderboard.render_table([
        {**rec("sklearn.TruncatedSVD", 0.3, params={"n_components": 50, "n_iter": 5}),
         "defaults_by": "library", "recbench_defaults": ["n_components"]},
        {**rec("implicit.ALS", 0.25), "defaults_by": "library", "recbench_defaults": []},
        {**rec("recbench.EASE", 0.35), "defaults_by": "recbench", "recbench_defaults": []},
        rec("baseline.Popularity", 0.2),  # written before the field: plain "defaults"
    ])
    assert row(lines, "sklearn.TruncatedSVD")[1] == (
        "library defaults but recbench's n_components=50")
    assert row(lines, "implicit.ALS")[1] == "library defaults"
    assert row(lines, "recbench.EASE")[1] == "recbench defaults"
    assert row(lines, "baseline.Popularity")[1] == "defaults"
    assert "each library's own defaults" not in leaderboard.DEFAULTS_TEXT


def test_a_table_timed_on_a_busy_host_is_flagged():
    quiet = {"seconds": 2.0, "other_cpus": 0.02, "own_cpus": 1.0, "loadavg_1m": [0.1, 1.0]}
    busy = {**quiet, "other_cpus": 1.1}
    calm = leaderboard.render_table([{**rec("a.A", 0.3), "host_load": quiet},
                                     {**rec("b.B", 0.2), "host_load": quiet}])
    assert not any("Timings not a result" in li for li in calm)
    flagged = leaderboard.render_table([{**rec("a.A", 0.3), "host_load": quiet},
                                        {**rec("b.B", 0.2), "host_load": busy}])
    assert "Timings not a result" in flagged[0] and "1 of 2 trials" in flagged[0]
    assert "1.10 cores" in flagged[0]


def test_a_trial_records_side_information_defaults_and_host_load():
    from bench.execution.trial import SCHEMA_MINOR, TrialSpec, run_trial
    from bench.splitting.splits import SplitSpec

    spec = TrialSpec(dataset="synthetic:users=100,items=60,ratings=2000,seed=1",
                     split=SplitSpec.from_dict({"method": "random", "test_fraction": 0.2}),
                     fold=0, adapter="recbench.ALS", params={"genre_prior": True})
    record, _ = run_trial(spec, None)
    assert record["status"] == "ok", record["error"]
    assert record["schema_version"] == 1 and record["schema_minor"] == SCHEMA_MINOR >= 1
    assert record["side_information"] is True
    assert record["defaults_by"] == "recbench" and record["recbench_defaults"] == []
    load = record["host_load"]
    assert load["seconds"] > 0 and load["other_cpus"] >= 0 and load["own_cpus"] > 0
    assert record["cold_users"]["n"] == 0


def test_msr_anchors_compare_on_their_item_stratified_split_and_ablations_use_seeds():
    from bench.execution import suites

    msr = suites.load("msr-anchors")
    assert {s["method"] for run in msr.runs for s in run["splits"]} == {"item_stratified"}
    for name in ("ablation-als", "ablation-factors", "ablation-regularisation",
                 "ablation-train-fraction"):
        assert all(run.get("seeds") == [0, 1, 2] for run in suites.load(name).runs), name
    quick = suites.load("quick")
    assert 'filter_by="user"' not in quick.description
