"""The results store: JSON-lines files of trial records under ``<results>/runs/``.

Appends are one ``write`` of a whole line under an exclusive ``flock``, so concurrent runs
never interleave lines and a killed writer leaves at most one truncated last line, which
readers skip.  Records are never rewritten: when a trial is recorded again (a retried
failure), readers keep the latest record per ``trial_id``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.errors import StoreFault, UserError

FINISHED = ("ok", "failed", "timeout")  # resumption does not redo these
#: a short sha256 of the record's other fields, added on append and checked by readers
CHECKSUM = "checksum"
#: fields every reader relies on, with their JSON types
REQUIRED: dict[str, type | tuple] = {
    "trial_id": str, "adapter": str, "dataset": str, "split": dict, "fold": int,
    "status": str, "metrics": dict,
}
#: optional fields readers use as such when present (None allowed), with their JSON types
OPTIONAL: dict[str, type | tuple] = {
    "env": dict, "params": dict, "metric_options": dict, "split_label": str, "label": str,
    "stage": str, "suite": str, "group": str, "seed": int, "threads": int, "error": str,
    "per_user_file": str, "started_at": str, "dataset_fingerprint": str,
    "topk_file": str, "topk_sha256": str, "topk_k": int, "in_memory_adapter": str,
}
log = logging.getLogger(__name__)


def runs_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "runs"


def run_file(results_dir: Path, suite: str) -> Path:
    return runs_dir(results_dir) / f"{suite}.jsonl"


def fault(path: Path, exc: OSError) -> StoreFault:
    """One line for an environment fault on a store file (full disk, I/O error, ...)."""
    return StoreFault(f"cannot write {path}: {exc.strerror or exc}; nothing was recorded for "
                      "the trial, re-run the same command to resume once this is fixed")


def append(path: Path, record: dict) -> None:
    """Append one record line; on a write error the file is cut back to its old length,
    so a full disk leaves no partial line, and ``StoreFault`` is raised."""
    body = _canonical(record)
    stamped = {**json.loads(body), CHECKSUM: hashlib.sha256(body).hexdigest()[:16]}
    line = (json.dumps(stamped, sort_keys=True, allow_nan=False) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise fault(path, exc) from None
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
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise fault(path, exc) from None
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file renamed into place; on any error the
    temporary file is removed and an ``OSError`` becomes ``StoreFault``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_beside(path)
    except OSError as exc:
        raise fault(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise fault(path, exc) from None
        raise


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new file next to ``path``, to be renamed onto it, with the mode of the file it
    replaces, else that of any new file (0666 less the umask, where ``mkstemp`` gives 0600)."""
    while True:
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        if path.is_file():
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        return fd, str(tmp)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(record: dict) -> bytes:
    body = {k: v for k, v in record.items() if k != CHECKSUM}
    return json.dumps(body, sort_keys=True, allow_nan=False, default=str).encode()


def _lines(path: Path) -> Iterator[tuple[int, dict | None]]:
    """(line number, record) for each non-empty line; None for a line that does not parse
    or fails its checksum."""
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:  # a symlink loop, a directory named *.jsonl, no permission
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                yield number, parse_line(line)


def parse_line(line: str) -> dict | None:
    """The record on one line, or None when it does not parse or fails its checksum (a
    flipped bit: the trial then counts as not recorded)."""
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: brackets nested deep
        return None
    if not isinstance(rec, dict) or "trial_id" not in rec:
        return None
    stored = rec.get(CHECKSUM)
    try:
        if stored is not None and stored != hashlib.sha256(_canonical(rec)).hexdigest()[:16]:
            return None
    except (ValueError, RecursionError):  # NaN (never written with a checksum), deep nesting
        return None
    return rec


def read(path: Path) -> Iterator[dict]:
    """Records of one file in order.  A truncated last line (a killed writer) is skipped
    silently; any other unreadable or corrupt line is skipped with a warning, and its
    trial counts as not recorded, so resuming runs it again."""
    entries = list(_lines(path))
    bad = [n for n, rec in entries if rec is None]
    if bad and (len(bad) > 1 or bad[0] != entries[-1][0]):
        log.warning("%s: %d unreadable or corrupt line(s) skipped (first: line %d); their "
                    "trials count as not recorded", path, len(bad), bad[0])
    for _, rec in entries:
        if rec is not None:
            yield rec


def check_record(rec: dict, where: str) -> None:
    """The fields every reader relies on, with their types; anything else is one line."""
    for key, kind in REQUIRED.items():
        if key not in rec:
            raise UserError(f"{where}: record lacks the field {key!r}")
        if not isinstance(rec[key], kind) or isinstance(rec[key], bool):
            raise UserError(f"{where}: field {key!r} is {rec[key]!r}, expected "
                            f"{' or '.join(k.__name__ for k in _tuple(kind))}")
    for key, kind in OPTIONAL.items():
        value = rec.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise UserError(f"{where}: field {key!r} is {value!r:.60}, expected "
                            f"{' or '.join(k.__name__ for k in _tuple(kind))}")
    if rec["status"] not in ("ok", "failed", "timeout", "skipped"):
        raise UserError(f"{where}: unknown status {rec['status']!r}")
    for name, value in rec["metrics"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UserError(f"{where}: metric {name!r} is {value!r}, expected a number")


def _tuple(kind: type | tuple) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their ``*.jsonl`` files (a results dir means its runs/)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            sub = runs_dir(p) if runs_dir(p).is_dir() else p
            out.extend(sorted(sub.glob("*.jsonl")))
        elif p.exists() or p.is_symlink():
            if p.suffix != ".jsonl":
                raise UserError(f"{p} is not a results directory or a .jsonl file of records")
            out.append(p)
    for p in out:
        try:
            p.stat()
        except FileNotFoundError:
            pass  # a dangling link: no records
        except OSError as exc:  # a symlink loop: one line, not a traceback
            raise UserError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return out


def latest(records: Iterable[dict]) -> dict[str, dict]:
    """Latest record per trial id (later lines win)."""
    out: dict[str, dict] = {}
    for rec in records:
        out[rec["trial_id"]] = rec
    return out


def load(paths: Iterable[Path]) -> list[dict]:
    """Latest record per trial of every file, each checked by ``check_record``."""
    recs: list[dict] = []
    for f in files(paths):
        for number, rec in _lines(f):
            if rec is not None:
                check_record(rec, f"{f} line {number}")
        recs.extend(read(f))
    return list(latest(recs).values())


def per_user_intact(results_dir: Path, rec: dict) -> bool:
    """A record's per-user file exists and matches its recorded checksum (records written
    before checksums were kept only need the file to exist)."""
    rel = rec.get("per_user_file")
    if not rel:
        return True
    path = Path(results_dir) / rel
    if not path.is_file():
        return False
    expected = rec.get("per_user_sha256")
    return expected is None or sha256_file(path) == expected


def finished_ids(path: Path) -> set[str]:
    return {tid for tid, rec in latest(read(path)).items() if rec.get("status") in FINISHED}


class Claims:
    """Which trials of a run file another live process is running right now.

    Two runs into one results directory split the work instead of doing it twice: before
    a trial starts, a run claims it (a file named after the trial holding its process's
    identity: pid, start time and boot id) under an exclusive lock, after checking that no
    other run has recorded it meanwhile; a claim whose process is gone (killed run, a pid
    reused by another process or after a reboot) or older than ``max_age`` is taken over.
    The claim is removed once the record is appended.
    """

    def __init__(self, run_path: Path) -> None:
        self.run_path = run_path
        self.dir = run_path.parent / "claims" / run_path.stem
        self.pid = os.getpid()
        self.identity = process_identity(self.pid)
        self._offset = 0
        self._recorded: dict[str, dict] = {}

    def recorded(self) -> dict[str, dict]:
        """Latest record per trial id, reading only what was appended since last time."""
        try:
            with open(self.run_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return self._recorded
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
            rec = parse_line(line) if line.strip() else None
            if rec is not None:
                self._recorded[rec["trial_id"]] = rec
        return self._recorded

    def claim(self, trial_id: str, is_done: Callable[[dict], bool],
              max_age: float | None = None) -> int | None:
        """Claim ``trial_id``; None when claimed, else the pid that has it, or 0 when
        another run has recorded it as done since this run started.  A claim older than
        ``max_age`` seconds has expired."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise fault(self.dir, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            rec = self.recorded().get(trial_id)
            if rec is not None and is_done(rec):
                return 0
            path = self.dir / trial_id
            try:
                other = _claimant(path.read_text())
                if max_age is not None and time.time() - path.stat().st_mtime > max_age:
                    other = 0
            except FileNotFoundError:
                other = 0
            if other and other != self.pid:
                return other
            try:
                path.write_text(self.identity)
            except OSError as exc:
                raise fault(path, exc) from None
            return None
        finally:
            os.close(fd)

    def release(self, trial_id: str) -> None:
        try:
            os.unlink(self.dir / trial_id)
        except OSError:
            pass


def process_identity(pid: int) -> str:
    """``pid``, its start time (clock ticks after boot) and the boot id: a pid reused by
    another process, or after a reboot, reads as another identity.  The pid alone where
    there is no /proc."""
    try:
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, IndexError):
        return str(pid)
    return f"{pid} {start} {boot}"


def _claimant(text: str) -> int:
    """The pid of a claim's process when that very process is alive, else 0."""
    parts = text.split()
    if not parts or not parts[0].isdigit():
        return 0
    pid = int(parts[0])
    if not _alive(pid):
        return 0
    now = process_identity(pid)
    if now == text.strip() or (len(parts) == 1 and now == parts[0]):  # no /proc: pid only
        return pid
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def split_stale(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(current, stale): a record is stale when its dataset name's newest record was
    computed on other content (another ``dataset_fingerprint``), e.g. an edited CSV;
    tables never mix the two."""
    newest: dict[str, tuple[str, str]] = {}
    for rec in records:
        fp = rec.get("dataset_fingerprint")
        if fp:
            when = str(rec.get("started_at") or "")
            if rec["dataset"] not in newest or when >= newest[rec["dataset"]][0]:
                newest[rec["dataset"]] = (when, fp)
    current, stale = [], []
    for rec in records:
        fp = rec.get("dataset_fingerprint")
        keep = not fp or rec["dataset"] not in newest or newest[rec["dataset"]][1] == fp
        (current if keep else stale).append(rec)
    return current, stale


def results_dirs(sources: Iterable[str | Path]) -> list[Path]:
    """Results directories of record files (``<results>/runs/<suite>.jsonl`` -> ``<results>``):
    where the per-user files named by the records live."""
    dirs: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            d = src
        else:
            d = src.parent.parent if src.parent.name == "runs" else src.parent
        if d not in dirs:
            dirs.append(d)
    return dirs


# ----------------------------------------------------------------------------------------
# Compact per-user packs (``bench.reporting.peruser_pack`` writes them; readers use ``pack_values``)
# ----------------------------------------------------------------------------------------

PACK_SUFFIX = ".peruser.npz"


def pack_path(results_dir: Path, suite: str) -> Path:
    """``<results>/runs/<suite>.peruser.npz``: the run file's per-user pack."""
    return Path(results_dir) / "runs" / f"{suite}{PACK_SUFFIX}"


def pack_checksum_path(pack: Path) -> Path:
    """``<suite>.peruser.sha256`` beside ``<suite>.peruser.npz``."""
    return pack.with_name(pack.name.removesuffix(".npz") + ".sha256")


@lru_cache(maxsize=8)
def _open_pack(path: Path, size: int, mtime: float) -> Any:
    try:
        expected = pack_checksum_path(path).read_text().split()[0]
    except (OSError, IndexError):
        expected = None
    if expected != sha256_file(path):
        log.warning("per-user pack %s does not match its checksum (%s): not used", path,
                    pack_checksum_path(path).name)
        return None
    return np.load(path)


def pack_values(record: dict, results_dir: Path, metric: str) -> tuple[Any, Any] | None:
    """(users, values) of ``metric`` for ``record`` from its run's per-user pack, or None."""
    path = pack_path(results_dir, str(record.get("suite", "")))
    try:
        stat = path.stat()
    except OSError:
        return None
    data = _open_pack(path, stat.st_size, stat.st_mtime)
    tid = record.get("trial_id")
    if data is None or f"{tid}/{metric}" not in data.files or f"{tid}/user" not in data.files:
        return None
    return data[f"{tid}/user"], data[f"{tid}/{metric}"]
