"""Re-runs on another CPU (``<results>/reruns/<name>``): the leaderboard says which rows
moved beyond their interval, and recbench's own kernels repeat bit for bit when re-run
with an AVX2 CPU's code paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
SUITE = """
description = "re-run test"
threads = 1
[[run]]
datasets = ["synthetic:users=300,items=200,ratings=6000,seed=0"]
splits = [{ method = "random", test_fraction = 0.2, seed = 0 }]
adapters = ["baseline.Popularity", "recbench.ALS", "recbench.ImplicitALS"]
metrics = { ks = [10] }
"""
#: an AMD EPYC's (AVX2, no AVX-512) code paths in numba and OpenBLAS, on any x86 CPU
AVX2 = {"NUMBA_CPU_NAME": "znver3", "OPENBLAS_CORETYPE": "Haswell"}


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, text=True,
                         capture_output=True, timeout=900, env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def leaderboard(results: Path) -> str:
    out = results / "LB.md"
    bench("report", "--results", str(results), "--output", str(out), "--no-plots")
    return out.read_text()


def row(text: str, adapter: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| `{adapter}`"))


def test_a_rerun_with_another_cpus_code_paths_repeats_and_is_reported(tmp_path):
    suite = tmp_path / "rerun.toml"
    suite.write_text(SUITE)
    results = tmp_path / "results"
    bench("run", "--suite", str(suite), "--results", str(results), "--no-report")
    again = results / "reruns" / "avx2"
    bench("run", "--suite", str(suite), "--results", str(again), "--no-report", env=AVX2)
    recs = [json.loads(line) for line in next((again / "runs").glob("*.jsonl")).open()]
    assert {r["env"]["threads"]["env"]["NUMBA_CPU_NAME"] for r in recs} == {"znver3"}

    text = leaderboard(results)
    assert "## Re-runs on another CPU" in text
    assert "with `NUMBA_CPU_NAME=znver3`, `OPENBLAS_CORETYPE=Haswell`" in text
    # our kernels are invariant by construction: every metric bit for bit
    assert "3 of 3 published trials re-run; 3 gave every metric bit for bit" in text
    assert "3 rows judged on their table's sort column; 0 moved beyond their 95% interval." in text
    assert "⇄" not in "".join(row(text, a) for a in ("baseline.Popularity", "recbench.ALS"))

    # A re-run that moved one row far and another by a hair (records edited by hand, so
    # without their checksum): only the far one is marked and listed.
    path = next((again / "runs").glob("*.jsonl"))
    edited = []
    for r in recs:
        r.pop("checksum", None)
        if r["adapter"] == "baseline.Popularity":
            r["metrics"]["ndcg@10"] += 0.5
        if r["adapter"] == "recbench.ALS":
            r["metrics"]["ndcg@10"] += 1e-9
        edited.append(json.dumps(r))
    path.write_text("\n".join(edited) + "\n")
    text = leaderboard(results)
    assert "⇄" in row(text, "baseline.Popularity")
    assert "⇄" not in row(text, "recbench.ALS")
    assert "1 differ in some metric" not in text and "2 differ in some metric" in text
    assert "3 rows judged on their table's sort column; 1 moved beyond their 95% interval:" in text
    section = text.split("## Re-runs on another CPU")[1].split("\n## ")[0]  # not Datasets
    moved = [line for line in section.splitlines()
             if line.startswith("| ") and "`" in line]
    assert len(moved) == 1 and "`baseline.Popularity`" in moved[0] and "+0.5000" in moved[0]
