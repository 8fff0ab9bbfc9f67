"""What storing each trial's top-K lists costs: bytes per trial and seconds per trial.

Runs a suite through the CLI (default: the ``quick`` suite, ML-100k, restricted to the
adapters given) into a fresh results directory, then reports, over the trials that stored
lists: the top-K file's bytes (mean, min, max; per evaluated user; beside the per-user
metric file of the same trial), and the time the lists add to a trial: building the arrays
in the worker, sending them to the driver (npz + base64, as ``TrialOutcome`` carries them)
and writing the checksummed file (median of ``--repeat`` runs of those steps on each
trial's own lists), beside the trial's ``duration_seconds``.

    python benchmarks/topk_lists_cost.py --results /tmp/topk-cost \
        --adapter 'baseline.*' --adapter scipy.PureSVD --adapter implicit.ALS

Timings depend on the machine and its load: the script prints the host's other CPU use
recorded with the trials (``host_load.other_cpus``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.execution import executors, topk


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="quick")
    p.add_argument("--results", type=Path, required=True, help="a new results directory")
    p.add_argument("--adapter", action="append", default=[])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    cmd = [sys.executable, "-m", "bench", "run", "--suite", args.suite, "--results",
           str(args.results), "--no-report", "--threads", "1"]
    cmd += [a for pat in args.adapter for a in ("--adapter", pat)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    recs = [json.loads(line) for f in sorted((args.results / "runs").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]
    with_lists = [r for r in recs if r.get("topk_file")]
    sizes = np.array([(args.results / r["topk_file"]).stat().st_size for r in with_lists])
    per_user = np.array([(args.results / r["per_user_file"]).stat().st_size
                         for r in with_lists])
    users = np.array([r["metrics"]["n_eval_users"] for r in with_lists])
    extra, durations = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in with_lists:
            lists = topk.read(args.results, r)
            seconds = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                arrays = topk.arrays(lists["user"], lists["item"],
                                     np.arange(lists["user"].max() + 1),
                                     np.arange(lists["item"].max() + 1))
                sent = executors.decode_arrays(executors.encode_arrays(arrays))
                topk.save(Path(tmp), r["trial_id"], sent)
                seconds.append(time.perf_counter() - t0)
            extra.append(statistics.median(seconds))
            durations.append(r["duration_seconds"])
    loads = [r.get("host_load", {}).get("other_cpus") for r in with_lists]
    loads = [x for x in loads if x is not None]
    print(f"records: {len(recs)}, with top-K lists: {len(with_lists)} "
          f"(K = {sorted({r['topk_k'] for r in with_lists})})")
    print(f"top-K file bytes per trial: mean {sizes.mean():,.0f}, min {sizes.min():,}, "
          f"max {sizes.max():,}; {sizes.sum() / users.sum():.1f} bytes per evaluated user")
    print(f"per-user metric file bytes per trial (same trials): mean {per_user.mean():,.0f}")
    print(f"seconds the lists add per trial (build + send + write, median of "
          f"{args.repeat}): mean {np.mean(extra) * 1e3:.1f} ms, max {np.max(extra) * 1e3:.1f} ms;"
          f" trial duration: median {statistics.median(durations):.2f} s")
    if loads:
        print(f"host other_cpus during the trials: median {statistics.median(loads):.2f}, "
              f"max {max(loads):.2f} (shared machine: timings are indicative)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
