"""A Dask run prints where its scheduler's dashboard is (issue 26), through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("distributed")


def test_a_dask_run_prints_its_dashboard_address(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", "smoke", "--adapter",
         "baseline.GlobalMean", "--executor", "dask", "--jobs", "1", "--results",
         str(tmp_path / "r"), "--no-report"],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    (line,) = [x for x in res.stderr.splitlines() if x.startswith("Dask dashboard: ")]
    assert re.fullmatch(r"Dask dashboard: http://[^\s:/]+:\d+/status( \(bokeh is not "
                        r"installed here: .*\))?", line), line
    assert res.stderr.index("executor dask on a LocalCluster") < res.stderr.index(line)
