"""Runs never dirty the checkout: a run of the README's quick start in a fresh clone leaves
``git status`` clean (a user's records, leaderboard and figures go to the git-ignored
results/local/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import results

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_a_run_in_a_fresh_clone_leaves_git_status_clean(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    # the tree a commit of this checkout would hold (tracked + new, not ignored files)
    clone = tmp_path / "clone"
    for rel in git("ls-files", "-z", "--cached", "--others", "--exclude-standard",
                   cwd=ROOT).split("\0"):
        if rel and (ROOT / rel).is_file():
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, clone / rel)
    git("init", "-q", cwd=clone)
    git("add", "-A", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "clone", cwd=clone)
    assert git("status", "--porcelain", cwd=clone) == ""

    # a run as the README's quick start makes, narrowed to smoke and one cheap adapter; run
    # from the clone, so `python -m bench` imports the clone's own code
    env = {k: v for k, v in os.environ.items() if k != "RECBENCH_ADAPTERS_PATH"}
    run = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", "smoke",
         "--adapter", "baseline.Bias", "--threads", "1"],
        cwd=clone, capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    local = clone / "results" / "local"
    assert (local / "LEADERBOARD.md").is_file() and list((local / "plots").glob("*.png"))
    assert git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""

    # the per-user values the run stored, through the results API
    frame = results.load(local)
    per_user = results.load(local, per_user=True)
    assert len(frame) == 1
    assert per_user["ndcg@10"].notna().sum() == frame["n_eval_users"].iloc[0] > 0
    assert per_user["ndcg@10"].mean() == pytest.approx(frame["ndcg@10"].iloc[0], abs=1e-6)
    assert (per_user["trial_id"] == frame["trial_id"].iloc[0]).all()
