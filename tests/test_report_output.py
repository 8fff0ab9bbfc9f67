"""`report` through the CLI on a real run (issue 26): where --output may write (stdout, a
symlink, a fifo, a device: written through, never replaced; new files get the umask's mode),
the tables as CSV and LaTeX, the legend naming each table's sort column, the Reproduce line
keeping --adapter and --results, and the progress of `report --html`."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import threading
from io import StringIO

import pandas as pd
import pytest

from bench import results

#: two tables: a rating table (most rows predict ratings: sorted by RMSE) and a ranking one
SUITE = """description = "report outputs"
threads = 1
[[run]]
datasets = ["synthetic:users=150,items=90,ratings=3000,seed=6"]
splits = [{ method = "kfold", n_folds = 2, seed = 0 }]
adapters = ["baseline.Popularity", "baseline.ItemMean", "baseline.Bias"]
metrics = { ks = [10], threshold = "none" }
[[run]]
datasets = ["synthetic:users=150,items=90,ratings=3000,seed=6"]
splits = [{ method = "random", test_fraction = 0.2, seed = 1 }]
adapters = ["baseline.Popularity", "recbench.EASE"]
metrics = { ks = [10], threshold = "none" }
"""


def bench(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(results dir, suite file): the suite run with --adapter 'baseline.*' (no EASE)."""
    home = tmp_path_factory.mktemp("run")
    suite = home / "outputs.toml"
    suite.write_text(SUITE)
    res = bench("run", "--suite", suite, "--adapter", "baseline.*", "--results", home / "r",
                "--no-plots")
    assert res.returncode == 0, res.stderr
    return home / "r", suite


def reproduce_line(board: str) -> list[str]:
    line = next(x for x in board.splitlines() if x.startswith("Reproduce: `"))
    return shlex.split(line.removeprefix("Reproduce: `").removesuffix("`"))


def test_the_reproduce_line_keeps_adapter_and_results_and_names_what_ran(run, tmp_path):
    results_dir, suite = run
    argv = reproduce_line((results_dir / "LEADERBOARD.md").read_text())
    assert argv == ["python", "-m", "bench", "run", "--suite", str(suite),
                    "--adapter", "baseline.*", "--results", str(results_dir)]
    # report knows only the records: it names the adapters they hold
    res = bench("report", "--results", results_dir, "--output", "-", "--no-plots")
    assert res.returncode == 0, res.stderr
    assert reproduce_line(res.stdout)[6:] == [
        "--adapter", "baseline.Bias", "--adapter", "baseline.ItemMean",
        "--adapter", "baseline.Popularity", "--results", str(results_dir)]
    # every adapter of the suite recorded: no --adapter; the default results dir: no --results
    shutil.copytree(results_dir, tmp_path / "results" / "local")
    res = bench("run", "--suite", suite, "--no-plots", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    argv = reproduce_line((tmp_path / "results" / "local" / "LEADERBOARD.md").read_text())
    assert argv == ["python", "-m", "bench", "run", "--suite", str(suite)]


def test_the_legend_names_each_tables_sort_column(run):
    board = (run[0] / "LEADERBOARD.md").read_text()
    assert "† in the sort column (RMSE in rating tables, NDCG@10 in the others):" in board
    assert "sort column (NDCG)" not in board
    heads = [x for x in board.splitlines() if x.startswith("| model |")]
    assert len(heads) == 2


def test_output_dash_is_stdout(run, tmp_path):
    res = bench("report", "--results", run[0], "--output", "-", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("# recbench leaderboard\n")
    assert "leaderboard: stdout" in res.stderr
    assert "figures: none (--output stdout is not a regular file" in res.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-", no plots/


def test_a_symlink_is_written_through_and_stays_a_symlink(run, tmp_path):
    target = tmp_path / "elsewhere" / "board.md"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "LEADERBOARD.md"
    link.symlink_to(target)
    null = tmp_path / "null.md"
    null.symlink_to(os.devnull)
    for out in (link, null):
        res = bench("report", "--results", run[0], "--output", out, "--no-plots")
        assert res.returncode == 0, res.stderr
        assert out.is_symlink()
    assert target.read_text().startswith("# recbench leaderboard")
    assert os.readlink(null) == os.devnull and stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_fifo_is_written_through(run, tmp_path):
    fifo = tmp_path / "board.md"
    os.mkfifo(fifo)
    got = StringIO()
    reader = threading.Thread(target=lambda: got.write(fifo.read_text()), daemon=True)
    reader.start()
    res = bench("report", "--results", run[0], "--output", fifo)
    reader.join(timeout=60)
    assert res.returncode == 0, res.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got.getvalue().startswith("# recbench leaderboard\n")
    assert "figures: none (--output " in res.stderr


def test_new_files_get_the_umasks_mode_and_replaced_ones_keep_theirs(run, tmp_path):
    fresh, kept = tmp_path / "fresh.md", tmp_path / "kept.md"
    kept.write_text("old\n")
    kept.chmod(0o600)
    for out in (fresh, kept):
        res = bench("report", "--results", run[0], "--output", out, "--no-plots", umask=0o027)
        assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # was 0600 (mkstemp) for every file
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept.read_text().startswith("# recbench leaderboard")
    res = bench("report", "--results", run[0], "--output", tmp_path)
    assert res.returncode == 2 and "is a directory" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_tables_as_csv_and_latex(run, tmp_path):
    res = bench("report", "--results", run[0], "--format", "csv", "--output", "-")
    assert res.returncode == 0, res.stderr
    csv = res.stdout
    frame = pd.read_csv(StringIO(csv))
    api = results.table(run[0])
    assert len(frame) == len(api) == 4  # 3 rows in the rating table, 1 in the other
    assert list(frame["row_key"]) == list(api["row_key"])
    assert frame["row_key"].is_unique
    rating = frame[frame["sort_column"] == "rmse"]
    assert list(rating["rank"]) == [1, 2, 3]  # Popularity has no RMSE: last
    assert rating["rmse"].iloc[:2].is_monotonic_increasing and rating["rmse"].iloc[2:].isna().all()
    assert frame["ndcg@10"].notna().all() and frame["ndcg@10.ci95"].notna().all()
    assert set(frame["folds"]) == {1, 2}

    out = tmp_path / "tables.tex"
    res = bench("report", "--results", run[0], "--format", "latex", "--output", out)
    assert res.returncode == 0, res.stderr
    tex = out.read_text()
    assert tex.count(r"\begin{tabular}") == 2 and tex.count(r"\bottomrule") == 2
    assert r"\usepackage{booktabs}" in tex and r"$\pm$" in tex and r"\textbf{" in tex
    assert "baseline.Popularity & " in tex
    assert not (tmp_path / "plots").exists()
    assert results.to_latex(api) == tex and results.to_csv(api) == csv


def test_report_html_prints_its_stages(run, tmp_path):
    pytest.importorskip("jinja2")
    res = bench("report", "--html", "--results", run[0], "--output", tmp_path / "site")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0] == f"site: 7 records read ({run[0]})"  # 3 rows x 2 folds + 1: no EASE
    stages = ["site: drawing figures", "site: tables and significance",
              "site: rendering the pages of 4 rows", "site: writing "]
    at = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in stages]
    assert at == sorted(at), res.stderr
    assert lines[-1] == f"site: {tmp_path / 'site' / 'index.html'}"


def test_paired_test_between_two_chosen_rows(run):
    table = results.table(run[0])
    rating = table[table["sort_column"] == "rmse"].set_index("adapter")
    pop, item = rating.loc["baseline.Popularity", "row_key"], rating.loc[
        "baseline.ItemMean", "row_key"]
    ab = results.paired_test(run[0], pop, item, metric="ndcg@10")
    ba = results.paired_test(run[0], item, pop, metric="ndcg@10")
    assert ab["mean_diff"] == pytest.approx(-ba["mean_diff"])
    assert (ab["ci_low"], ab["ci_high"]) == pytest.approx((-ba["ci_high"], -ba["ci_low"]))
    assert ab["p_value"] == ba["p_value"] and ab["folds"] == [0, 1]
    assert ab["ci_low"] <= ab["mean_diff"] <= ab["ci_high"]
    gap = rating.loc["baseline.Popularity", "ndcg@10"] - rating.loc["baseline.ItemMean",
                                                                    "ndcg@10"]
    assert ab["mean_diff"] == pytest.approx(gap, abs=0.02)  # pooled users vs fold means
    assert ab["n_users"] > 100 and ab["method"] == "bootstrap"

    from bench.errors import UserError

    other = table[table["sort_column"] != "rmse"]["row_key"].iloc[0]
    with pytest.raises(UserError, match="different tables"):
        results.paired_test(run[0], pop, other)
    with pytest.raises(UserError, match="no finished test records with row_key"):
        results.paired_test(run[0], pop, "0" * 16)
    with pytest.raises(UserError, match=r"\(baseline.Popularity\) has no rmse"):
        results.paired_test(run[0], pop, item, metric="rmse")
    bias = rating.loc["baseline.Bias", "row_key"]
    with pytest.raises(UserError, match="rmse has no per-user values"):
        results.paired_test(run[0], bias, item, metric="rmse")


def test_per_user_values_group_by_row_key_as_the_records_do(run):
    users = results.load(run[0], per_user=True)
    frame = results.load(run[0])
    assert users["row_key"].nunique() == frame.loc[frame["ndcg@10"].notna(), "row_key"].nunique()
    per_fold = users.groupby(["row_key", "fold"])["ndcg@10"].mean()
    for _, rec in frame[frame["ndcg@10"].notna()].iterrows():
        assert per_fold[(rec["row_key"], rec["fold"])] == pytest.approx(rec["ndcg@10"], abs=1e-6)
