"""Compact per-user metrics for published results: one compressed, checksummed file per run.

A run keeps one ``.npz`` per trial under ``<results>/runs/peruser/`` (git ignores them: they
are many and large).  What the leaderboard's significance marks read of them is small: the
evaluated users and their NDCG@K.  ``write`` packs exactly that, for every trial of a run
file ``<results>/runs/<suite>.jsonl``, into ``<results>/runs/<suite>.peruser.npz`` (members
``<trial_id>/user`` and ``<trial_id>/ndcg@K``, values unchanged) with its sha256 in
``<suite>.peruser.sha256`` beside it; a report reads a trial's values from the pack when its
own per-user file is absent (``store.pack_values``; a fresh clone of ``results/published``), so
``bench report --results results/published`` rebuilds the committed leaderboard with its
marks.  A pack whose checksum does not match is not used (one warning).

    python -m bench.reporting.peruser_pack --results results/published
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.execution import store

#: per-user arrays the report needs (significance marks on the NDCG column)
KEPT_PREFIXES = ("ndcg@",)
SUFFIX = store.PACK_SUFFIX
pack_path = store.pack_path
checksum_path = store.pack_checksum_path


def _kept(name: str) -> bool:
    return name == "user" or name.startswith(KEPT_PREFIXES)


def write(results_dir: Path) -> list[Path]:
    """A pack per run file of ``results_dir`` from its trials' per-user files; returns the
    packs written.  Raises ``FileNotFoundError`` naming the trials whose file is missing or
    damaged (a pack must cover every trial that has per-user values)."""
    results_dir = Path(results_dir)
    written = []
    for run in sorted(store.runs_dir(results_dir).glob("*.jsonl")):
        records = store.latest(store.read(run))
        arrays: dict[str, np.ndarray] = {}
        missing = []
        for tid in sorted(records):
            rec = records[tid]
            if not rec.get("per_user_file"):
                continue
            if not store.per_user_intact(results_dir, rec):
                missing.append(tid)
                continue
            with np.load(results_dir / rec["per_user_file"]) as data:
                for name in data.files:
                    if _kept(name):
                        arrays[f"{tid}/{name}"] = data[name]
        if missing:
            raise FileNotFoundError(
                f"{run.name}: {len(missing)} trial(s) have no intact per-user file (e.g. "
                f"{missing[0]}); re-run them before packing")
        if not arrays:
            continue
        path = pack_path(results_dir, run.stem)
        store.write_atomic(path, lambda fh, a=arrays: np.savez_compressed(fh, **a))
        line = f"{store.sha256_file(path)}  {path.name}\n".encode()
        store.write_atomic(checksum_path(path), lambda fh, b=line: fh.write(b))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reporting.peruser_pack",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="results directory")
    args = parser.parse_args(argv)
    try:
        for path in write(args.results):
            print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
