"""Figures from a small stored results dir written here (no model is run)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image
from matplotlib.text import Text

from bench.execution import record, store
from bench.execution.trial import save_per_user
from bench.reporting import figures as plots
from bench.reporting import significance
from bench.reporting.figures import common

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KFOLD = {"method": "kfold", "seed": 0, "n_folds": 2}
OPTIONS = {"ks": [10], "threshold": 4.0}


def write(results: Path, adapter: str, fold: int = 0, split: dict = KFOLD, params=None,
          rmse=None, ndcg=None, fit=0.5, **extra) -> dict:
    identity = "|".join(
        [adapter, str(fold), json.dumps(split, sort_keys=True), json.dumps(params),
         json.dumps(extra, sort_keys=True, default=str)]
    )
    trial_id = f"{zlib.crc32(identity.encode()):08x}"
    rng = np.random.default_rng(zlib.crc32(identity.encode()))
    metrics, intervals, per_user_file = {}, {}, None
    if rmse is not None:
        metrics.update(rmse=rmse, mae=rmse * 0.8)
        intervals.update(rmse=0.01, mae=0.008)
    if ndcg is not None:
        users = np.arange(120, dtype=np.int32)
        values = np.clip(ndcg + rng.normal(0, 0.2, users.size), 0, 1)
        per_user_file, _ = save_per_user(results, trial_id, {"user": users, "ndcg@10": values})
        metrics["ndcg@10"] = float(values.mean())
        intervals["ndcg@10"] = 0.03
    record = {
        "trial_id": trial_id,
        "suite": "plots",
        "dataset": "synthetic",
        "split": split,
        "split_label": "2-fold" if split["method"] == "kfold" else "cold users",
        "fold": fold,
        "adapter": adapter,
        "label": "defaults",
        "stage": "test",
        "params": params or {},
        "threads": 1,
        "metric_options": OPTIONS,
        "status": "ok",
        "metrics": metrics,
        "intervals": intervals,
        "fit_seconds": fit,
        "per_user_file": per_user_file,
        **extra,
    }
    store.append(store.run_file(results, "plots"), record)
    return record


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every record shape the figures read: ranking + rating rows over 2 folds, a
    parameter sweep, a convergence curve, activity bands, and a cold-start series."""
    models = {  # adapter: (rmse, ndcg, fit seconds)
        "surprise.SVD": (0.93, 0.10, 0.9),
        "scipy.SVD": (0.92, 0.13, 0.4),
        "baseline.GlobalMean": (1.12, None, 1e-4),
        "surprise.NormalPredictor": (1.52, 0.03, 0.1),  # far RMSE outlier
        "implicit.BPR": (None, 0.23, 5.0),
        "lightfm.WARP": (None, 0.31, 6.0),
        "baseline.Popularity": (None, 0.17, 0.0),  # fit time rounded to 0
    }
    tmp_path = tmp_path_factory.mktemp("results")
    bands = {"edges": [3, 20, 40, 80, 150, 600], "n_users": [24] * 5}
    for fold in (0, 1):
        for adapter, (rmse, ndcg, fit) in models.items():
            extra = {}
            if ndcg is not None:
                extra["bands"] = {**bands, "ndcg@10": list(np.linspace(ndcg / 2, ndcg * 1.4, 5))}
            write(results_dir := tmp_path, adapter, fold, rmse=rmse, ndcg=ndcg, fit=fit, **extra)
        for factors, ndcg in ((8, 0.25), (16, 0.28), (32, 0.27), (64, 0.22)):
            write(results_dir, "implicit.ALS", fold, params={"factors": factors}, ndcg=ndcg,
                  fit=0.01 * factors)
            # The same quantity under another library's name: drawn on the same axis.
            write(results_dir, "scipy.PureSVD", fold, params={"rank": factors}, ndcg=ndcg - 0.02,
                  fit=0.005 * factors)
        iterations = list(range(1, 11))
        curve = {
            "iteration": iterations,
            "test": [0.9 + 0.1 / i for i in iterations],
            "validation": [0.88 + 0.1 / i for i in iterations],
            "metric": "rmse",
        }
        write(results_dir, "recbench.ALS", fold, rmse=0.91, fit=1.2, curve=curve)
    for n_reveal in (0, 2, 5, 10):
        split = {"method": "cold_users", "seed": 0, "cold_fraction": 0.1, "n_reveal": n_reveal}
        for adapter, base in (("baseline.Popularity", 0.30), ("implicit.ALS", 0.20)):
            write(tmp_path, adapter, 0, split=split, ndcg=base + 0.01 * n_reveal,
                  cold_path="refit")
    return tmp_path


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.05  # something is drawn, not a blank canvas


@pytest.fixture(scope="module")
def rendered(results: Path) -> list[Path]:
    # with significance marks, as `bench report` draws them (hatched bars)
    mark = significance.Marks.of(results).table
    return plots.render_all(store.load([results]), results, mark=mark)


def test_render_all_writes_every_figure_as_png_from_stored_records(results, rendered):
    paths = rendered
    names = sorted(p.name for p in paths)
    kinds = {n.rsplit("_", 1)[1] for n in names}
    assert kinds == {
        "rmse-vs-fit.png", "ndcg10-vs-fit.png", "ndcg10-bars.png", "ndcg10-by-activity.png",
        "ndcg10-vs-factors-rank.png", "convergence.png", "cold-start.png",
    }, names
    assert all(p.parent == results / "plots" for p in paths)
    assert len(names) == len(set(names)) == 7
    for p in paths:
        assert_png(p)


def test_render_all_to_another_dir_and_with_nothing_to_draw(results, tmp_path):
    cold = [r for r in store.load([results]) if r["split"]["method"] == "cold_users"]
    out = tmp_path / "figures"
    paths = plots.render_all(cold, [results], out)
    assert [p.name for p in paths] == ["plots-synthetic-cold-users-seed0-rel-ge4_cold-start.png"]
    assert paths[0].parent == out
    assert plots.render_all([], results, tmp_path / "empty") == []
    failed = [dict(r, status="failed") for r in store.load([results])]
    assert plots.render_all(failed, results, tmp_path / "failed") == []


def test_figures_of_different_tables_do_not_overwrite_each_other(results):
    # File names come from the table: suite, dataset, split, seed and relevance rule.
    records = [r for r in store.load([results]) if r["split"]["method"] == "kfold"]
    first = records[0]
    variants = [
        first,
        dict(first, suite="other"),
        dict(first, dataset="synthetic-2"),
        dict(first, split=dict(first["split"], seed=1)),
        dict(first, metric_options={"ks": [10], "threshold": None}),
        dict(first, metric_options={"ks": [10], "threshold": 4.0, "candidates": "cold"}),
    ]
    slugs = [plots.table_slug(r) for r in variants]
    assert len(set(slugs)) == len(slugs), slugs
    tables = {record.table_key(r) for r in records}
    assert len({plots.table_slug(r) for r in records}) == len(tables) == 1


def test_pareto_front_on_a_hand_case():
    cost = np.array([1.0, 2.0, 3.0, 4.0, 2.0])
    higher = np.array([0.1, 0.3, 0.2, 0.5, 0.25])
    # (3, 0.2) is beaten by (2, 0.3); (2, 0.25) ties on cost with a better point.
    assert plots.pareto_front(cost, higher, True).tolist() == [True, True, False, True, False]
    lower = np.array([1.0, 0.9, 0.95, 0.8, 0.92])
    assert plots.pareto_front(cost, lower, False).tolist() == [True, True, False, True, False]


def test_labels_do_not_overlap_each_other_or_the_points():
    rng = np.random.default_rng(0)
    xs = np.r_[rng.uniform(0.3, 0.5, 12), rng.uniform(0, 1, 10)]  # a dense cluster + spread
    ys = np.r_[rng.uniform(0.3, 0.5, 12), rng.uniform(0, 1, 10)]
    texts = [f"model-{i}" for i in range(len(xs))]
    fig = common.new_figure(8, 6)
    ax = fig.add_subplot()
    ax.scatter(xs, ys, s=30)
    ax.set_xlim(-0.1, 1.1)
    ax.set_ylim(-0.1, 1.1)
    plots.place_labels(ax, xs, ys, texts, ["black"] * len(xs), np.arange(len(xs)))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # text only, no leader
    assert sorted(t.get_text() for t in ax.texts) == sorted(texts)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "labels overlap"
    points = ax.transData.transform(np.column_stack([xs, ys]))
    for box in boxes:
        inside = (
            (points[:, 0] > box.x0 + 1) & (points[:, 0] < box.x1 - 1)
            & (points[:, 1] > box.y0 + 1) & (points[:, 1] < box.y1 - 1)
        )
        assert not inside.any(), "a label covers a point"


def test_row_names_are_short_but_unambiguous():
    keys = [
        ("scipy.SVD", "defaults", "{}"),
        ("surprise.SVD", "defaults", "{}"),
        ("lightfm.WARP", "defaults", "{}"),
        ("implicit.ALS", "defaults", json.dumps({"factors": 8, "reg": 0.1})),
        ("implicit.ALS", "defaults", json.dumps({"factors": 16, "reg": 0.1})),
        ("implicit.BPR", "tuned", json.dumps({"factors": 8})),
    ]
    keys = [record.RowKey(*k, 1, "") for k in keys]
    names = plots.row_names(keys, short=True)
    assert names[keys[0]] == "scipy.SVD" and names[keys[1]] == "surprise.SVD"
    assert names[keys[2]] == "WARP"
    assert names[keys[3]] == "ALS (factors=8)" and names[keys[4]] == "ALS (factors=16)"
    assert names[keys[5]] == "BPR (tuned)"
    assert len(set(names.values())) == len(keys)


def test_plots_read_the_leaderboard_row_and_table_keys(results):
    # Points and bars are the leaderboard's rows: one per row key, averaged over folds.
    records = [r for r in store.load([results]) if r["split"]["method"] == "kfold"]
    rows = {record.row_key(r) for r in records if "ndcg@10" in r["metrics"]}
    stats = common.row_stats(record.by_row(records), "ndcg@10")
    assert set(stats) == rows
    key = next(k for k in rows if k.adapter == "lightfm.WARP")
    folds = [r["metrics"]["ndcg@10"] for r in records if record.row_key(r) == key]
    assert stats[key][0] == pytest.approx(np.mean(folds))


def test_sweeps_find_one_swept_parameter_per_adapter(results):
    records = [r for r in store.load([results]) if r["split"]["method"] == "kfold"]
    assert plots.sweeps(records) == [{"implicit.ALS": "factors", "scipy.PureSVD": "rank"}]


def test_split_sweeps_threads_and_metric_definitions_get_their_figures(tmp_path):
    models = (("baseline.Popularity", 0.15, 1e-4), ("implicit.ALS", 0.25, 0.8))
    for fraction in (0.25, 0.5, None):  # a learning curve; no train_fraction means 100%
        split = {"method": "random", "seed": 0, "test_fraction": 0.2}
        label = "random 80/20"
        if fraction:
            split["train_fraction"] = fraction
            label += f", {fraction:.0%} of train"
        for adapter, ndcg, fit in models:
            write(tmp_path, adapter, split=split, ndcg=ndcg * (fraction or 1.0), fit=fit,
                  group="learning", split_label=label)
    holdout = {"method": "random", "seed": 0, "test_fraction": 0.2}
    for threshold in (3.0, 4.0):  # one split scored under four metric definitions
        for i, (adapter, ndcg, fit) in enumerate(models):
            metrics = {"ndcg@5": ndcg + (0.2 * i if threshold == 3.0 else -0.2 * i),
                       "ndcg@10": ndcg}
            write(tmp_path, adapter, split=holdout, fit=fit, group="definitions",
                  split_label="random 80/20", metrics=metrics,
                  metric_options={"ks": [5, 10], "threshold": threshold})
    for threads in (1, 2):  # thread scaling: rows differ only in their thread count
        for adapter, _, fit in models:
            write(tmp_path, f"{adapter}", split=holdout, rmse=0.95, fit=fit / threads,
                  threads=threads, group="threads", split_label="random 80/20")
    paths = plots.render_all(store.load([tmp_path]), tmp_path)
    kinds = sorted(p.name.split("_", 1)[1] for p in paths)
    assert kinds == sorted([
        "learning-curve.png",  # instead of per-table figures for each train fraction
        "ranks-by-metric-definition.png",
        "rmse-vs-fit.png",
        "threads.png",
        *["ndcg5-vs-fit.png", "ndcg5-bars.png"] * 2,  # the two relevance tables
    ]), kinds
    for p in paths:
        assert_png(p)
