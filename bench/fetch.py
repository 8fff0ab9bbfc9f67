"""Fetching raw dataset files: verified, atomic, cached, failing fast without network.

Every file lands in the cache through a temp file in the same directory that is renamed
into place only after its checksum matched, so an interrupted or failed fetch never leaves
a partial file under the final name.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import platformdirs

#: Official servers get one short try: here (and in CI) there is no network but PyPI.
URL_TIMEOUT_SECONDS = 10.0
PIP_TIMEOUT_SECONDS = 180.0
_CHUNK = 1 << 20


class FetchError(Exception):
    """One fetch attempt failed; the message is one line saying what and where."""


def cache_dir() -> Path:
    """Root of the dataset cache: ``$RECBENCH_CACHE_DIR`` or the platform's user cache."""
    override = os.environ.get("RECBENCH_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("recbench"))


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"md5:abc..."`` -> ``("md5", "abc...")``; the algorithm prefix is mandatory."""
    algo, sep, digest = checksum.partition(":")
    if not sep or algo not in hashlib.algorithms_guaranteed:
        raise ValueError(f"checksum {checksum!r} must look like 'md5:<hex>' or 'sha256:<hex>'")
    return algo, digest.strip().lower()


def file_digest(path: Path, algo: str = "sha256") -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()


def matches(path: Path, checksum: str) -> bool:
    algo, digest = parse_checksum(checksum)
    return file_digest(path, algo) == digest


def _temp_beside(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    return Path(name)


def make_readable(path: Path) -> None:
    """mkstemp creates 0600 files; cached data should be readable like any other file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def download(
    url: str,
    dest: Path,
    checksum: str,
    timeout: float = URL_TIMEOUT_SECONDS,
    also_sha256: str | None = None,
) -> Path:
    """Download ``url`` to ``dest``, verified against ``checksum`` (``algo:hex``)."""
    algo, expected = parse_checksum(checksum)
    tmp = _temp_beside(dest)
    try:
        h = hashlib.new(algo)
        h256 = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                while chunk := response.read(_CHUNK):
                    h.update(chunk)
                    h256.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"download of {url} failed: {reason}") from None
        if h.hexdigest() != expected:
            raise FetchError(
                f"download of {url} has {algo} {h.hexdigest()}, expected {expected}; discarded"
            )
        if also_sha256 and h256.hexdigest() != also_sha256.lower():
            raise FetchError(f"download of {url} has an unexpected sha256; discarded")
        make_readable(tmp)
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def pip_download_wheel(package: str, version: str, workdir: Path) -> Path:
    """``pip download`` one wheel (no dependencies, never installed) into ``workdir``."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        f"{package}=={version}",
        "-d",
        str(workdir),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {package}=={version} timed out") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download {package}=={version} failed: {last}")
    wheels = sorted(workdir.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {package}=={version} produced no wheel")
    return wheels[0]


def extract_members(
    wheel_or_zip: Path,
    members: dict[str, str],
    member_sha256: dict[str, str],
    dest_dir: Path,
) -> dict[str, Path]:
    """Copy archive ``members`` ({role: member path}) to ``dest_dir``, each sha256-verified.

    Returns {role: extracted path}.  All members are checked before any is renamed into
    place, so a bad archive leaves nothing behind.
    """
    staged: list[tuple[Path, Path]] = []
    out: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(wheel_or_zip) as zf:
            for role, member in members.items():
                try:
                    data = zf.read(member)
                except KeyError:
                    raise FetchError(f"{wheel_or_zip.name} has no member {member}") from None
                expected = member_sha256.get(role)
                actual = hashlib.sha256(data).hexdigest()
                if expected and actual != expected.lower():
                    raise FetchError(
                        f"{wheel_or_zip.name}:{member} has sha256 {actual}, expected {expected}"
                    )
                dest = dest_dir / Path(member).name
                tmp = _temp_beside(dest)
                tmp.write_bytes(data)
                make_readable(tmp)
                staged.append((tmp, dest))
                out[role] = dest
        for tmp, dest in staged:
            os.replace(tmp, dest)
        return out
    except zipfile.BadZipFile:
        raise FetchError(f"{wheel_or_zip.name} is not a valid zip archive") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
