"""Do two runs give the same numbers?  Trial by trial (by ``trial_id``), every field that
results depend on: metrics, intervals, bands, per-user sha256, status, parameters, split and
dataset fingerprints, fitted values, curves.  Timings and environment are not compared.

    python benchmarks/compare_runs.py RESULTS_BEFORE RESULTS_AFTER

Reads the JSON lines directly (no recbench import), so it checks recbench from outside.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIELDS = ("metrics", "intervals", "bands", "per_user_sha256", "status", "params", "n_train",
          "n_test", "split_fingerprint", "dataset_fingerprint", "fitted", "curve")


def load(results: str) -> dict[str, dict]:
    out = {}
    for path in sorted(Path(results, "runs").glob("*.jsonl")):
        for line in path.open():
            if line.strip():
                rec = json.loads(line)
                out[rec["trial_id"]] = rec  # the latest record of a trial wins
    return out


def main() -> int:
    a, b = load(sys.argv[1]), load(sys.argv[2])
    common = sorted(set(a) & set(b))
    differ = sorted({(a[t]["adapter"], a[t].get("split_label"), a[t].get("seed"),
                      a[t].get("reproducible", True), f)
                     for t in common for f in FIELDS if a[t].get(f) != b[t].get(f)})
    print(f"before {len(a)} trials, after {len(b)}, common {len(common)} "
          f"(only before {len(set(a) - set(b))}, only after {len(set(b) - set(a))})")
    print(f"{len({d[:3] for d in differ})} common trial(s) differ")
    for adapter, split, seed, reproducible, field in differ[:50]:
        print(f"  {adapter} {split} seed {seed} (reproducible: {reproducible}): {field}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
