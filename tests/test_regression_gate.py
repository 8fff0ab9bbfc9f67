"""The CI regression gate: the `ci` suite must match the committed baseline.

This is what `.ci/run` (via pytest) checks on every change: quality within tolerance and
fit times within 3x of the baseline's (calibrated against a fixed numpy workload timed in
the same run).  Update the baseline after an intended change with:

    rm -rf results/baseline && python -m bench run --suite ci --results results/baseline
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baseline"


@pytest.mark.slow
def test_ci_suite_matches_the_committed_baseline(tmp_path):
    assert (BASELINE / "runs" / "ci.jsonl").exists(), "no committed baseline: see module doc"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", "ci", "--results", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    cmp = subprocess.run(
        [sys.executable, "-m", "bench", "compare", str(BASELINE), str(tmp_path),
         "--time-ratio", "3"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    print(cmp.stdout)
    assert cmp.returncode == 0, "regression against results/baseline:\n" + cmp.stdout
