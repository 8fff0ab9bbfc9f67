"""Hostile input and environment faults: one-line errors, nothing poisoned, damage repaired.

Every case runs the real CLI in a subprocess on small synthetic or CSV data; the faults are
real (a full tmpfs, a read-only mount, flipped bytes in stored files).
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_runner import bench, records, write_suite

from bench.execution import store


def one_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--time-limit", "-5", "--time-limit must be a finite number of seconds"),
        ("--time-limit", "0", "--time-limit must be"),
        ("--time-limit", "nan", "--time-limit must be"),
        ("--time-limit", "inf", "--time-limit must be"),
        ("--memory-limit-mb", "0", "--memory-limit-mb must be at least 1024"),
        ("--memory-limit-mb", "-1", "--memory-limit-mb must be at least 1024"),
        ("--memory-limit-mb", "1", "--memory-limit-mb must be at least 1024"),
        ("--threads", "10000", "--threads must be between 1 and"),
    ],
)
def test_numeric_options_are_validated_before_anything_is_written(tmp_path, option, value,
                                                                   message):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", option, value)
    assert res.returncode == 2 and message in one_line(res)
    assert not (tmp_path / "r").exists()


def test_a_refused_time_limit_leaves_earlier_records_usable(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    before = store.run_file(tmp_path / "r", "s").read_bytes()
    assert bench("run", "--suite", suite, "--results", tmp_path / "r",
                 "--time-limit", "-5").returncode == 2
    assert store.run_file(tmp_path / "r", "s").read_bytes() == before


def test_results_that_is_a_file_is_one_line(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    (tmp_path / "file").write_text("x")
    res = bench("run", "--suite", suite, "--results", tmp_path / "file")
    assert res.returncode == 2 and "is a file, not a directory" in one_line(res)


def mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_results_filesystem_is_one_line(tmp_path):
    mount_tmpfs(tmp_path / "ro", "ro,size=1m")
    try:
        suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
        res = bench("run", "--suite", suite, "--results", tmp_path / "ro" / "r")
        assert res.returncode == 2 and "is not writable" in one_line(res)
    finally:
        umount(tmp_path / "ro")


def test_full_disk_stops_the_run_records_nothing_and_resumes_when_freed(tmp_path):
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=2m")
    try:
        suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
        results = disk / "r"
        filler = disk / "filler"
        # leave a few kB: the run starts, then the store runs out of space mid-run
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * (free - 12 * 1024))
        res = bench("run", "--suite", suite, "--results", results, "--no-report")
        assert res.returncode == 3, res.stderr
        assert "No space left on device" in res.stderr.strip().splitlines()[-1]
        assert not [r for r in records(results, "s") if r["status"] != "ok"]
        assert not list(results.rglob("*.tmp"))
        text = store.run_file(results, "s").read_bytes() if store.run_file(results, "s").exists() \
            else b""
        assert text == b"" or text.endswith(b"\n")  # no partial line
        filler.unlink()
        res = bench("run", "--suite", suite, "--results", results, "--no-report")
        assert res.returncode == 0, res.stderr
        recs = records(results, "s")
        assert sorted(r["adapter"] for r in recs) == ["baseline.Popularity", "fault.Mean"]
        assert all(r["status"] == "ok" for r in recs)
    finally:
        umount(disk)


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def damaged_split(tmp_path):
    """A run of one trial into ``tmp_path / "r"``, then a byte of its split file flipped;
    returns (results dir, split file)."""
    results = tmp_path / "r"
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", results).returncode == 0
    (split_file,) = (results / "splits").glob("*.npz")
    flip_byte(split_file)
    return results, split_file


def test_a_corrupt_split_file_is_rebuilt_from_its_seed(tmp_path):
    results, split_file = damaged_split(tmp_path)
    two = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    res = bench("run", "--suite", two, "--results", results)
    assert res.returncode == 0, res.stderr
    assert "damaged" in res.stderr or "damaged" in (results / "runs" / "s.log").read_text()
    recs = records(results, "s")
    assert len({r["split_fingerprint"] for r in recs}) == 1  # rebuilt = the same split
    with np.load(split_file) as z:
        assert z["fold_of_row"].size


def test_a_split_that_does_not_reproduce_stops_with_one_line(tmp_path):
    results, split_file = damaged_split(tmp_path)
    split_file.with_suffix(".sha256").write_text("0" * 64)  # "recorded" split was another
    more = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    res = bench("run", "--suite", more, "--results", results)
    assert res.returncode == 3
    assert "does not reproduce the stored split" in res.stderr.strip().splitlines()[-1]
    assert [r["adapter"] for r in records(results, "s")] == ["fault.Mean"]


def test_damaged_per_user_files_and_record_lines_are_redone(tmp_path):
    results = tmp_path / "r"
    suite = write_suite(tmp_path / "s.toml", ["baseline.Popularity", "baseline.ItemMean"])
    assert bench("run", "--suite", suite, "--results", results).returncode == 0
    first = {r["adapter"]: r for r in records(results, "s")}
    assert all(r["per_user_sha256"] for r in first.values())
    flip_byte(results / first["baseline.Popularity"]["per_user_file"])
    # a flipped digit inside a metric: still valid JSON, caught by the record checksum
    run_file = store.run_file(results, "s")
    lines = run_file.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if "baseline.ItemMean" in line)
    rmse = f'"rmse": {first["baseline.ItemMean"]["metrics"]["rmse"]}'
    assert rmse in lines[target]
    lines[target] = lines[target].replace(rmse, rmse[:-1] + str((int(rmse[-1]) + 1) % 10))
    run_file.write_text("\n".join(lines) + "\n")
    res = bench("run", "--suite", suite, "--results", results)
    assert res.returncode == 0, res.stderr
    assert "corrupt line" in res.stderr
    assert "2 recorded trial(s) are re-run" in res.stderr or "re-run" in res.stderr
    again = {r["adapter"]: r for r in records(results, "s")}
    assert again["baseline.ItemMean"]["metrics"] == first["baseline.ItemMean"]["metrics"]
    assert again["baseline.Popularity"]["started_at"] >= first["baseline.Popularity"]["started_at"]
    assert store.per_user_intact(results, again["baseline.Popularity"])


def test_an_edited_dataset_is_recomputed_and_stale_records_stay_out_of_tables(tmp_path):
    csv = tmp_path / "x.csv"
    rng = np.random.default_rng(0)
    keys = rng.choice(60 * 40, 900, replace=False)
    rows = [f"{k // 40},{k % 40},{r}" for k, r in zip(keys, rng.integers(1, 6, 900), strict=True)]
    csv.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    results = tmp_path / "r"
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    data = ["--dataset", f"csv:{csv}"]
    assert bench("run", "--suite", suite, "--results", results, *data,
                 "--adapter", "fault.Mean").returncode == 0
    csv.write_text("user,item,rating\n" + "\n".join(rows[:800]) + "\n")  # edited
    res = bench("run", "--suite", suite, "--results", results, *data,
                "--adapter", "baseline.Popularity")
    assert res.returncode == 0, res.stderr
    board = (results / "LEADERBOARD.md").read_text()
    assert "`fault.Mean`" not in board.split("## Suite")[1]  # stale: out of every table
    assert "Left out: 1 record(s)" in board
    # a run that includes the first adapter again recomputes it on the new content
    res = bench("run", "--suite", suite, "--results", results, *data)
    assert res.returncode == 0, res.stderr
    latest = store.latest(records(results, "s"))
    assert len({r["dataset_fingerprint"] for r in latest.values()}) == 1
    assert "`fault.Mean`" in (results / "LEADERBOARD.md").read_text().split("## Suite")[1]


def test_the_reproduce_line_quotes_and_keeps_the_dataset(tmp_path):
    csv = tmp_path / "my data.csv"
    csv.write_text("user,item,rating\n" + "\n".join(
        f"{u},{i},{(u + i) % 5 + 1}" for u in range(30) for i in range(0, 40, 3)) + "\n")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--dataset", f"csv:{csv}")
    assert res.returncode == 0, res.stderr
    board = (tmp_path / "r" / "LEADERBOARD.md").read_text()
    assert f"--dataset 'csv:{csv}'" in board


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("dataset"), "lacks the field 'dataset'"),
        (lambda r: r["metrics"].update({"ndcg@10": "high"}), "metric 'ndcg@10' is 'high'"),
    ],
)
def test_report_and_compare_on_malformed_records_are_one_line(tmp_path, mutate, message):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    (rec,) = records(tmp_path / "r", "s")
    mutate(rec)
    rec.pop("checksum")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rec) + "\n")
    for args in (["report", "--results", bad, "--no-plots"],
                 ["compare", tmp_path / "r", bad]):
        res = bench(*args)
        assert res.returncode == 2 and message in one_line(res), res.stderr


def test_report_refuses_a_csv_and_an_output_directory(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    (tmp_path / "some.csv").write_text("user,item,rating\n1,2,3\n")
    res = bench("report", "--results", tmp_path / "some.csv")
    assert res.returncode == 2 and "not a results directory or a .jsonl" in one_line(res)
    (tmp_path / "out").mkdir()
    res = bench("report", "--results", tmp_path / "r", "--output", tmp_path / "out",
                "--no-plots")
    assert res.returncode == 2 and "is a directory" in one_line(res)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('description = "x"\n[[runs]]\ndatasets = ["ml-100k"]\n', "unknown key(s) runs"),
        ('description = "x"\nthreds = 1\n[[run]]\ndatasets = ["ml-100k"]\n'
         'splits = [{ method = "random" }]\nadapters = ["fault.Mean"]\n', "unknown key(s) threds"),
        ('description = "x"\n[[run]]\ndatasets = ["ml-100k"]\nsplits = [{ method = "random" }]\n'
         'adapters = "baseline.Popularity"\n', "'adapters' must be a list of strs"),
    ],
)
def test_suite_typos_are_named(tmp_path, text, message):
    path = tmp_path / "typo.toml"
    path.write_text(text)
    res = bench("run", "--suite", path, "--results", tmp_path / "r")
    assert res.returncode == 2 and message in one_line(res), res.stderr


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["run", "--bogus"], "`python -m bench run --help`"),
        (["frobnicate"], "`python -m bench --help`"),
    ],
)
def test_usage_errors_point_at_the_right_help(args, hint):
    res = bench(*args)
    assert res.returncode == 2 and hint in one_line(res)


def test_a_split_with_no_test_rows_is_skipped_and_the_run_exits_1(tmp_path):
    csv = tmp_path / "one_each.csv"
    csv.write_text("user,item,rating\n" + "\n".join(f"{u},{u % 7},{u % 5 + 1}" for u in range(50))
                   + "\n")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"],
                        split='{ method = "stratified", test_fraction = 0.2 }')
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--dataset", f"csv:{csv}")
    assert res.returncode == 1
    assert "every one of the 1 trials was skipped" in res.stderr
    (rec,) = records(tmp_path / "r", "s")
    assert rec["status"] == "skipped" and "leaves no test rows" in rec["error"]


def test_a_threshold_outside_the_rating_scale_is_refused(tmp_path):
    csv = tmp_path / "centred.csv"
    csv.write_text("user,item,rating\n" + "\n".join(
        f"{u},{i},{(u * i) % 5 - 2}" for u in range(20) for i in range(10)) + "\n")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"], extra="metrics = { threshold = 4 }")
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--dataset", f"csv:{csv}")
    assert res.returncode == 2
    assert "threshold 4 is outside the rating scale -2..2" in one_line(res)
    assert not (tmp_path / "r").exists()
