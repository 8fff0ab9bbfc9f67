"""The results store: JSON-lines files of trial records under ``<results>/runs/``.

Appends are one ``write`` of a whole line under an exclusive ``flock``, so concurrent runs
never interleave lines and a killed writer leaves at most one truncated last line, which
readers skip.  Records are never rewritten: when a trial is recorded again (a retried
failure), readers keep the latest record per ``trial_id``.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

FINISHED = ("ok", "failed", "timeout")  # resumption does not redo these


def runs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "runs"


def run_file(results_dir: Path, suite: str) -> Path:
    return runs_dir(results_dir) / f"{suite}.jsonl"


def append(path: Path, record: dict) -> None:
    line = (json.dumps(record, sort_keys=True, allow_nan=False, default=str) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A previous writer killed mid-line leaves no newline: start on a fresh line so
        # this record stays parseable.
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> Iterator[dict]:
    """Records of one file in order; unparseable (truncated) lines are skipped."""
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "trial_id" in rec:
                yield rec


def files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their ``*.jsonl`` files (a results dir means its runs/)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            sub = runs_dir(p) if runs_dir(p).is_dir() else p
            out.extend(sorted(sub.glob("*.jsonl")))
        elif p.exists():
            out.append(p)
    return out


def latest(records: Iterable[dict]) -> dict[str, dict]:
    """Latest record per trial id (later lines win)."""
    out: dict[str, dict] = {}
    for rec in records:
        out[rec["trial_id"]] = rec
    return out


def load(paths: Iterable[Path]) -> list[dict]:
    recs: list[dict] = []
    for f in files(paths):
        recs.extend(read(f))
    return list(latest(recs).values())


def finished_ids(path: Path) -> set[str]:
    return {tid for tid, rec in latest(read(path)).items() if rec.get("status") in FINISHED}
