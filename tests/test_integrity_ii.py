"""Hostile input and environment faults, second round (issue 23): script injection in the
site, silent data loss, wrong results accepted, hangs, tracebacks.

Every case runs the real CLI in a subprocess on real files; the faults are real (a full
tmpfs, a read-only mount, truncated and flipped compressed files, killed processes).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_integrity import flip_byte, mount_tmpfs, one_line, umount
from test_runner import PLUGINS, bench, records, write_suite

from bench.execution import store


def base_csv(path: Path, rating=lambda u, i: (u * 7 + i) % 5 + 1) -> Path:
    """The issue's base.csv: 30 users, 40 items, 600 rows."""
    rows = [(u, i) for u in range(30) for i in range(40) if (u + i) % 2 == 0]
    path.write_text("user,item,rating,timestamp\n" + "".join(
        f"{u},{i},{rating(u, i)},{1000 + k}\n" for k, (u, i) in enumerate(rows)))
    return path


def site_files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*.html")}


# ------------------------------------------------------------------ 1. script injection

UNSAFE_HREF = re.compile(r"""href\s*=\s*["']?\s*(?!https?://)[a-z][a-z0-9+.\-]*:""", re.I)


def assert_no_injection(out: Path) -> None:
    pages = site_files(out)
    assert pages
    for name, text in pages.items():
        assert not UNSAFE_HREF.search(text), (name, UNSAFE_HREF.search(text))
        assert '"/onmouseover="' not in text and "<a href=\"x\"" not in text, name
        assert "Content-Security-Policy" in text and "script-src 'self'" in text, name


def test_a_markdown_link_in_a_csv_path_does_not_become_a_javascript_link(tmp_path):
    csv = base_csv(tmp_path / "[x](javascript:window.onerror=alert;throw+1).csv")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    results = tmp_path / "r"
    common = ("--suite", suite, "--results", results, "--dataset", f"csv:{csv}", "--no-plots")
    assert bench("run", *common, "--adapter", "fault.Mean").returncode == 0
    base_csv(csv, rating=lambda u, i: (u + i) % 5 + 1)  # edited: the first record is stale
    res = bench("run", *common, "--adapter", "baseline.Popularity")
    assert res.returncode == 0, res.stderr
    res = bench("report", "--html", "--results", results, "--no-plots")
    assert res.returncode == 0, res.stderr
    index = (results / "site" / "index.html").read_text()
    assert "Left out: 1 record(s)" in index and "javascript:window.onerror" in index
    assert_no_injection(results / "site")


def test_hostile_names_in_checksummed_records_stay_text(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    (rec,) = records(tmp_path / "r", "s")
    rec.pop("checksum")
    rec["adapter"] = 'fault.[y](x"/onmouseover="alert(1)")'
    rec["params"] = {"sleep": "[p](javascript:alert(2))"}
    rec["env"]["cpu"] = "[c](JavaScript:alert(3)) [ok](https://example.org/a)"
    hostile = tmp_path / "h" / "runs" / "h.jsonl"
    store.append(hostile, rec)  # a valid checksum
    res = bench("report", "--html", "--results", tmp_path / "h", "--no-plots")
    assert res.returncode == 0, res.stderr
    pages = site_files(tmp_path / "h" / "site")
    assert_no_injection(tmp_path / "h" / "site")
    text = "\n".join(pages.values())
    assert "onmouseover=&quot;" in text  # shown, as text
    assert '<a href="https://example.org/a">ok</a>' in text  # http(s) links still work


# ------------------------------------------------------------ 2-5. silent data loss


def test_report_never_writes_over_a_results_file(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    results = tmp_path / "r"
    assert bench("run", "--suite", suite, "--results", results, "--no-report").returncode == 0
    run_file = store.run_file(results, "s")
    before = run_file.read_bytes()
    copy = tmp_path / "records.txt"  # a records file by content, whatever its name
    copy.write_bytes(before)
    for target in (run_file, copy, tmp_path / "new.jsonl"):
        res = bench("report", "--results", results, "--output", target, "--no-plots")
        assert res.returncode == 2, res.stderr
        assert "is a results file, never overwritten" in one_line(res)
    assert run_file.read_bytes() == before and copy.read_bytes() == before
    assert not (tmp_path / "new.jsonl").exists()


def synthetic_layout(tmp_path: Path, *extra, out=None):
    return bench("write-layout", "ml-1m", "--data",
                 "synthetic:users=40,items=30,ratings=300,seed=1",
                 "--out", out or tmp_path / "layout", *extra)


def test_write_layout_refuses_a_non_empty_directory_unless_told(tmp_path):
    out = tmp_path / "ml-1m"
    out.mkdir()
    (out / "ratings.dat").write_text("1::1193::5::978300760\n")  # the user's real data
    res = synthetic_layout(tmp_path, out=out)
    assert res.returncode == 2
    assert "is not empty (it holds ratings.dat)" in one_line(res) and "--overwrite" in res.stderr
    assert (out / "ratings.dat").read_text() == "1::1193::5::978300760\n"
    res = synthetic_layout(tmp_path, "--overwrite", out=out)
    assert res.returncode == 0, res.stderr
    assert (out / "ratings.dat").read_text() != "1::1193::5::978300760\n"


# ---------------------------------------------------------- 12, 16. disk faults: one line


def test_write_layout_into_a_file_a_read_only_dir_or_a_full_disk_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    res = synthetic_layout(tmp_path, out=tmp_path / "file")
    assert res.returncode == 2 and "is a file; write-layout writes a directory" in one_line(res)
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=64k")
    try:
        res = bench("write-layout", "ml-1m", "--data",
                    "synthetic:users=300,items=200,ratings=20000,seed=1", "--out", disk / "big")
        assert res.returncode == 3 and "No space left on device" in one_line(res), res.stderr
        assert not list((disk / "big").iterdir())  # nothing half-written left
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        res = synthetic_layout(tmp_path, out=disk / "big")
        assert res.returncode == 2 and "is not writable" in one_line(res), res.stderr
    finally:
        umount(disk)


@pytest.fixture
def small_disk(tmp_path):
    """Results of a recorded run on a 3 MB tmpfs (figures not drawn yet)."""
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=3m")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    res = bench("run", "--suite", suite, "--results", disk / "r", "--no-report")
    assert res.returncode == 0, res.stderr
    yield disk, suite
    umount(disk)


def fill(disk: Path, leave: int) -> None:
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(free - leave, 0))


def last_line(res) -> str:
    """The error of a command that printed its stages first (report): the last line, one
    line, after progress lines only."""
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr
    assert not [x for x in lines[:-1] if x.startswith(("error:", "warning:"))], res.stderr
    return lines[-1]


def test_report_and_run_on_a_full_disk_are_one_line_and_leave_nothing_half_written(small_disk):
    disk, suite = small_disk
    results = disk / "r"
    before = store.run_file(results, "s").read_bytes()
    fill(disk, 8 * 1024)
    for args in (["report", "--results", results], ["report", "--html", "--results", results]):
        res = bench(*args)
        assert res.returncode == 3, res.stderr
        assert "No space left on device" in last_line(res)
    res = bench("run", "--suite", suite, "--results", results)  # all recorded; figures fail
    assert res.returncode == 3, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "No space left on device" in last and "the trials are recorded" in last
    assert "Traceback" not in res.stderr
    assert store.run_file(results, "s").read_bytes() == before
    assert not [p for p in results.rglob("*.png") if p.stat().st_size == 0]
    assert not list(results.rglob("*.tmp")) and not (results / "site").exists()


def test_report_on_read_only_results_is_one_line(small_disk):
    disk, _ = small_disk
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    for args in (["report", "--results", disk / "r"],
                 ["report", "--html", "--results", disk / "r", "--no-plots"]):
        res = bench(*args)
        assert res.returncode == 3, res.stderr
        assert "Read-only file system" in last_line(res)


# ------------------------------------------------- 3, 4, 15, 17. hostile and damaged data


def run_on(tmp_path: Path, data: Path, *extra):
    suite = write_suite(tmp_path / "s.toml", ["baseline.Popularity"])
    return bench("run", "--suite", suite, "--results", tmp_path / "r", "--dataset",
                 f"csv:{data}", "--no-plots", *extra)


def big_csv_bytes(n: int = 20000) -> bytes:
    rng = np.random.default_rng(0)
    keys = rng.choice(400 * 300, n, replace=False)
    return ("user,item,rating\n" + "".join(
        f"{k // 300},{k % 300},{k % 5 + 1}\n" for k in keys)).encode()


def test_a_truncated_zst_is_refused_like_gz_bz2_and_xz(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    whole = zstandard.ZstdCompressor().compress(big_csv_bytes())
    path = tmp_path / "cut.csv.zst"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    res = run_on(tmp_path, path)
    assert res.returncode == 2, res.stderr
    assert "premature end of the zstd data" in one_line(res)
    assert not (tmp_path / "r").exists()
    path.write_bytes(whole + zstandard.ZstdCompressor().compress(b""))  # whole: two frames
    assert run_on(tmp_path, path).returncode == 0


def test_an_xz_with_a_flipped_byte_is_one_line(tmp_path):
    import lzma

    path = tmp_path / "flip.csv.xz"
    path.write_bytes(lzma.compress(big_csv_bytes(40000)))
    flip_byte(path)
    res = run_on(tmp_path, path)
    assert res.returncode == 2, res.stderr
    assert "flip.csv.xz: cannot" in one_line(res)


def test_ratings_beyond_float32_are_refused(tmp_path):
    path = base_csv(tmp_path / "huge.csv", rating=lambda u, i: "1e300" if (u, i) == (3, 5) else 3)
    res = run_on(tmp_path, path)
    assert res.returncode == 2, res.stderr
    assert "rating 1e+300 is beyond what a float32 holds" in one_line(res)
    assert "huge.csv line" in res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("n_fields", [500_000, 50_000])
def test_a_megabyte_header_is_refused_fast(tmp_path, n_fields):
    path = tmp_path / "wide.csv"
    path.write_text("user,item,rating,timestamp" + ",1" * n_fields + "\n1,2,3,4\n")
    t0 = time.monotonic()
    res = run_on(tmp_path, path)
    assert time.monotonic() - t0 < 60
    assert res.returncode == 2, res.stderr
    assert "wide.csv: the first line" in one_line(res) and "not a table of ratings" in res.stderr


# ------------------------------------------------------- 6, 13. suites checked like the CLI


@pytest.mark.parametrize(
    ("extra", "time_limit", "message"),
    [
        ('params = { "baseline.Popularty" = { x = 1 } }', 60,
         "params names an unknown adapter 'baseline.Popularty'"),
        ('grid = { "fault.Maen" = { sleep = [0, 1] } }', 60,
         "grid names an unknown adapter 'fault.Maen'"),
        ("", "nan", "time_limit must be a finite number of seconds >= 1, got nan"),
        ("", "inf", "time_limit must be a finite number of seconds >= 1, got inf"),
        ("", '"abc"', "time_limit must be a finite number of seconds >= 1, got 'abc'"),
        ("", -5, "time_limit must be a finite number of seconds >= 1, got -5"),
        ("", 0, "time_limit must be a finite number of seconds >= 1, got 0"),
        ("threads = [10000]", 60, "threads must be between 1 and the"),
        ("seeds = [true]", 60, "'seeds' must be a list of ints, got [True]"),
    ],
)
def test_suite_values_get_the_cli_checks_before_anything_is_written(tmp_path, extra, time_limit,
                                                                    message):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"], extra=extra,
                        time_limit=time_limit)
    res = bench("run", "--suite", suite, "--results", tmp_path / "r")
    assert res.returncode == 2, res.stderr
    assert message in one_line(res)
    assert not (tmp_path / "r").exists()


def test_suite_level_threads_beyond_the_cores_is_refused(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(write_suite(suite, ["fault.Mean"]).read_text()
                     .replace('description = "test"\n', 'description = "test"\nthreads = 10000\n'))
    res = bench("run", "--suite", suite, "--results", tmp_path / "r")
    assert res.returncode == 2 and "threads must be between 1 and the" in one_line(res)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------- 7, 19. compare


@pytest.fixture
def popularity_run(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["baseline.Popularity"])
    assert bench("run", "--suite", suite, "--results", tmp_path / "r", "--no-report"
                 ).returncode == 0
    return tmp_path / "r"


@pytest.mark.parametrize(
    ("value", "change"),
    [(None, "missing"), (float("nan"), "not finite"), (float("inf"), "not finite"),
     ("drop", "missing")],
)
def test_compare_fails_when_a_metric_disappears_or_is_not_finite(tmp_path, popularity_run,
                                                                value, change):
    (rec,) = records(popularity_run, "s")
    assert rec["metrics"]["ndcg@10"] > 0
    rec.pop("checksum")
    if value == "drop":
        rec["metrics"].pop("ndcg@10")
    else:
        rec["metrics"]["ndcg@10"] = value
    current = tmp_path / "current.jsonl"
    current.write_text(json.dumps(rec) + "\n")
    res = bench("compare", popularity_run, current)
    assert res.returncode == 1, res.stdout + res.stderr
    row = next(line for line in res.stdout.splitlines() if "| ndcg@10 |" in line)
    assert change in row and "**REGRESSION**" in row
    assert "FAIL" in res.stdout.splitlines()[-1]


def test_compare_leaves_stale_records_out_with_a_note(tmp_path):
    csv = base_csv(tmp_path / "x.csv")
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean", "baseline.Popularity"])
    common = ("--suite", suite, "--results", tmp_path / "r", "--dataset", f"csv:{csv}",
              "--no-report")
    assert bench("run", *common, "--adapter", "fault.Mean").returncode == 0
    base_csv(csv, rating=lambda u, i: (u + i) % 5 + 1)  # edited since
    assert bench("run", *common, "--adapter", "baseline.Popularity").returncode == 0
    res = bench("compare", tmp_path / "r", tmp_path / "r", "--all-rows")
    assert res.returncode == 0, res.stdout + res.stderr
    table, _, notes = res.stdout.partition("Left out (computed on earlier contents")
    assert "baseline.Popularity" in table and "fault.Mean" not in table
    assert "current: fault.Mean" in notes and "baseline: fault.Mean" in notes


# ------------------------------------------------------ 14. malformed and hostile records


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("env", "linux", "field 'env' is 'linux', expected dict"),
     ("params", [1, 2], "field 'params' is [1, 2], expected dict"),
     ("metric_options", "k=10", "field 'metric_options' is 'k=10', expected dict")],
)
def test_records_with_fields_of_the_wrong_type_are_one_line(tmp_path, popularity_run, field,
                                                           value, message):
    (rec,) = records(popularity_run, "s")
    rec[field] = value
    bad = tmp_path / "bad" / "runs" / "bad.jsonl"
    store.append(bad, rec)  # a valid checksum
    for args in (["report", "--results", bad, "--no-plots"], ["compare", popularity_run, bad]):
        res = bench(*args)
        assert res.returncode == 2, res.stderr
        assert message in one_line(res)


def test_deeply_nested_lines_and_symlink_loops_are_one_line(tmp_path, popularity_run):
    run_file = store.run_file(popularity_run, "s")
    first = run_file.read_text()
    with open(run_file, "a") as fh:  # not the last line: not taken for a killed writer's
        fh.write("[" * 100_000 + "\n" + first)
    res = bench("report", "--results", popularity_run, "--no-plots")
    assert res.returncode == 0, res.stderr
    assert "1 unreadable or corrupt line(s) skipped" in res.stderr
    suite = write_suite(tmp_path / "s.toml", ["baseline.Popularity"])
    res = bench("run", "--suite", suite, "--results", popularity_run, "--no-plots")
    assert res.returncode == 0, res.stderr
    assert "already recorded" in res.stderr and "Traceback" not in res.stderr
    from bench import results

    assert len(results.load(popularity_run)) == 1

    loop = store.runs_dir(popularity_run) / "loop.jsonl"
    loop.symlink_to(loop)
    for args in (["report", "--results", popularity_run, "--no-plots"],
                 ["run", "--suite", suite, "--results", popularity_run, "--no-plots"]):
        res = bench(*args)
        assert res.returncode == 2, res.stderr
        assert "loop.jsonl: cannot read: Too many levels of symbolic links" in one_line(res)
    from bench.errors import UserError

    with pytest.raises(UserError, match="Too many levels of symbolic links"):
        results.load(popularity_run)


# ------------------------------------------------------------ 8. claims of other processes


@pytest.fixture
def stranger():
    """A live process that is no recbench run (a pid a claim may wrongly name)."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("claim", ["bare pid", "wrong start time", "expired"])
def test_a_claim_by_a_reused_pid_or_an_expired_claim_is_taken_over(tmp_path, stranger, claim):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    results = tmp_path / "r"
    assert bench("run", "--suite", suite, "--results", results, "--no-report").returncode == 0
    (rec,) = records(results, "s")
    store.run_file(results, "s").unlink()  # not recorded; a claim file says pid X has it
    claims = store.Claims(store.run_file(results, "s"))
    claims.dir.mkdir(parents=True, exist_ok=True)
    path = claims.dir / rec["trial_id"]
    true_identity = store.process_identity(stranger)
    assert len(true_identity.split()) == 3
    path.write_text({"bare pid": str(stranger),
                     "wrong start time": f"{stranger} 1 {true_identity.split()[2]}",
                     "expired": true_identity}[claim])
    if claim == "expired":
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # time_limit 60 + 600 s
    res = bench("run", "--suite", suite, "--results", results, "--no-report")
    assert res.returncode == 0, res.stderr
    assert "run by pid" not in res.stderr
    assert [r["status"] for r in records(results, "s")] == ["ok"]
    assert not path.exists()


def test_a_claim_of_a_live_run_is_respected(tmp_path, stranger):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"])
    results = tmp_path / "r"
    assert bench("run", "--suite", suite, "--results", results, "--no-report").returncode == 0
    (rec,) = records(results, "s")
    store.run_file(results, "s").unlink()
    claims = store.Claims(store.run_file(results, "s"))
    claims.dir.mkdir(parents=True, exist_ok=True)
    (claims.dir / rec["trial_id"]).write_text(store.process_identity(stranger))
    res = bench("run", "--suite", suite, "--results", results, "--no-report")
    assert f"run by pid {stranger}" in res.stderr, res.stderr
    assert records(results, "s") == []


# ---------------------------------------------------------- 11. SIGTERM ends the worker


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_sigterm_of_a_serial_driver_ends_its_worker_and_says_so(tmp_path):
    suite = write_suite(tmp_path / "s.toml", ["fault.Mean"],
                        extra='params = { "fault.Mean" = { sleep = 60 } }', time_limit=120)
    env = {**os.environ, "RECBENCH_ADAPTERS_PATH": str(PLUGINS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
         str(tmp_path / "r"), "--no-report"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (workers := children(proc.pid)) and time.time() < deadline:
            time.sleep(0.2)
        assert workers, "no worker started"
        time.sleep(2)  # the worker is in its trial
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1].startswith("terminated (SIGTERM); re-run `python -m bench")
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and "Z" not in Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1][:3]]
    assert records(tmp_path / "r", "s") == []


# ------------------------------------------------------ 18, 20. reproduce line, extras


def test_the_reproduce_line_of_a_suite_file_names_the_file_and_works(tmp_path):
    suite = write_suite(tmp_path / 'my "suite" x.toml', ["fault.Mean"])
    res = bench("run", "--suite", suite, "--results", tmp_path / "r", "--no-plots")
    assert res.returncode == 0, res.stderr
    board = (tmp_path / "r" / "LEADERBOARD.md").read_text()
    command = re.search(r"Reproduce: `([^`]+)`", board).group(1)
    import shlex

    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "bench", "run"] and argv[argv.index("--suite") + 1] == \
        str(suite)
    res = bench(*argv[3:], "--results", tmp_path / "r", "--no-plots")
    assert res.returncode == 0, res.stderr
    assert "1 of 1 trials already recorded" in res.stderr


def test_an_adapter_whose_extra_is_missing_is_unavailable_not_unknown(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()  # first on the path: a real failing `import torch`, as without the extra
    (blocker / "torch.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", "smoke", "--adapter", "torch.NCF",
         "--results", tmp_path / "r"], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 2, res.stderr
    line = one_line(res)
    assert "adapter 'torch.NCF' is unavailable here" in line and "unknown" not in line
    assert "pip install -e '.[neural]'" in line
