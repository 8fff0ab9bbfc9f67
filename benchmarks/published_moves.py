"""Which published numbers moved between two publications, and by how much.

    python benchmarks/published_moves.py 8867e10 results/published > results/republished.md

The first argument is a git commit whose ``results/published/runs/*.jsonl`` are the old
records (read with ``git show``), the second the new results directory.  Trials are matched
on ``trial_id`` (the hash of what defines a trial); the table lists every headline metric of
a trial in both that moved by more than 1e-6.  Reads the JSON lines directly (no recbench
import).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

METRICS = ("ndcg@10", "rmse", "hit_rate@10", "sampled_ndcg@10")


def collect(lines) -> dict[str, dict]:
    """trial_id -> its latest ok record."""
    out = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("status") == "ok":
            out[rec["trial_id"]] = rec
    return out


def main() -> int:
    commit, new_dir = sys.argv[1], Path(sys.argv[2])
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{commit}:results/published/runs"],
                           check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    old_lines = []
    for name in names:
        if name.endswith(".jsonl"):
            old_lines += subprocess.run(
                ["git", "show", f"{commit}:results/published/runs/{name}"],
                check=True, capture_output=True, text=True).stdout.splitlines()  # fmt: skip
    new_lines = []
    for path in sorted((new_dir / "runs").glob("*.jsonl")):
        new_lines += path.read_text().splitlines()
    old, new = collect(old_lines), collect(new_lines)
    common = sorted(set(old) & set(new), key=lambda t: (old[t]["adapter"], t))
    moved = [(t, m, old[t]["metrics"][m], new[t]["metrics"][m]) for t in common for m in METRICS
             if isinstance(old[t]["metrics"].get(m), (int, float))
             and isinstance(new[t]["metrics"].get(m), (int, float))
             and abs(old[t]["metrics"][m] - new[t]["metrics"][m]) > 1e-6]
    by_adapter = defaultdict(int)
    for t in {t for t, *_ in moved}:
        by_adapter[old[t]["adapter"]] += 1
    print(f"# Published numbers that moved: {commit} -> {new_dir}\n")
    print(f"ok trials: {len(old)} before, {len(new)} after, {len(common)} in both (same "
          f"trial_id: same dataset, split, fold, adapter, parameters, seed and metric options); "
          f"{len(moved)} metric values moved by more than 1e-6, in "
          f"{len({t for t, *_ in moved})} trials.\n")
    print("Trials that moved, by adapter: " + ", ".join(
        f"{a} {n}" for a, n in sorted(by_adapter.items(), key=lambda x: -x[1])) + "\n")
    print("| trial | suite | adapter | split | seed | fold | metric | before | after | change |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t, metric, a, b in moved:
        r = new[t]
        print(f"| {t} | {r.get('suite')} | {r['adapter']} | {r.get('split_label')} | "
              f"{r.get('seed')} | {r.get('fold')} | {metric} | {a:.6f} | {b:.6f} | {b - a:+.6f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
