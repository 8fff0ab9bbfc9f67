"""``python -m bench describe``: dataset characteristics and the degree-distribution figure;
the leaderboard's Datasets section from what ``run`` stored."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from bench.data.characteristics import ccdf, characteristics, gini

SYNTH = "synthetic:users=200,items=150,ratings=4000,seed=2"


def bench(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def test_characteristics_of_ml100k(ml100k) -> None:
    c = characteristics(ml100k)
    assert (c["users"], c["items"], c["ratings"]) == (943, 1682, 100_000)
    assert abs(c["density"] - 100_000 / (943 * 1682)) < 1e-12
    assert 0.62 < c["gini_items"] < 0.64  # MovieLens 100K: 0.629
    assert c["user_quantiles"][0] == 20 and c["user_quantiles"][-1] == 737
    assert c["item_quantiles"][-1] == 583
    assert abs(c["mean_rating"] - 3.53) < 0.01


def test_gini_and_ccdf() -> None:
    assert gini(np.array([5, 5, 5, 5])) == 0.0
    assert abs(gini(np.array([0, 0, 0, 10])) - 0.75) < 1e-12
    x, y = ccdf(np.array([1, 1, 2, 5, 0]))
    assert list(x) == [1, 2, 5] and list(y) == [1.0, 0.5, 0.25]


def test_describe_prints_side_by_side_and_draws(tmp_path) -> None:
    figure = tmp_path / "degrees.png"
    out = bench("describe", "ml-100k", SYNTH, "--figure", figure)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"| characteristic | `ml-100k` | `{SYNTH}` |"
    assert "| users | 943 | 200 |" in lines
    assert "| ratings | 100,000 | 4,000 |" in lines
    assert any(line.startswith("| Gini of item popularity | 0.629 |") for line in lines)
    assert any(line.startswith("| ratings per user, percentiles 0/10/25/50/75/90/99/100 | "
                               "20 / 23 / 33 / 65 / 148 / 244 / 443 / 737 |") for line in lines)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"figure: {figure}" in out.stderr


def test_bad_dataset_name_is_one_line_and_exit_2(tmp_path) -> None:
    out = bench("describe", "no-such-dataset", "--figure", tmp_path / "x.png")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(
        "error: unknown dataset 'no-such-dataset'")
    assert out.stdout == "" and not (tmp_path / "x.png").exists()
    bad = bench("describe", "synthetic:users=10,items=5", "--no-figure")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing ratings" in bad.stderr


def test_leaderboard_lists_the_datasets_of_the_run(tmp_path) -> None:
    suite = tmp_path / "mini.toml"
    suite.write_text(
        'description = "mini"\nthreads = 1\n[[run]]\n'
        f'datasets = ["{SYNTH}"]\n'
        'splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]\n'
        'adapters = ["baseline.Popularity"]\nmetrics = { ks = [10], threshold = 4.0 }\n'
    )
    results = tmp_path / "results"
    out = bench("run", "--suite", suite, "--results", results, "--no-plots")
    assert out.returncode == 0, out.stderr
    board = (results / "LEADERBOARD.md").read_text()
    section = board[board.index("## Datasets"):]
    assert f"| characteristic | `{SYNTH}` |" in section and "| users | 200 |" in section
    assert len(list((results / "datasets").glob("*.json"))) == 1
    again = bench("report", "--results", results, "--output", tmp_path / "again.md",
                  "--no-plots")
    assert again.returncode == 0 and (tmp_path / "again.md").read_text() == board
