"""Checks of hostile or damaged input files that the parsers' libraries let through:
a truncated zstd stream (read silently up to the cut), a first line of a megabyte (pandas
renames duplicate column names in quadratic time), ratings beyond float32."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bench.errors import UserError

#: a ratings table names a few columns: more is not a table of ratings
MAX_COLUMNS = 1000
#: the longest first line (header) read
MAX_FIRST_LINE = 65536
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_zstd_whole(path: Path) -> None:
    """Decompress ``path`` once, discarding the output, and check every frame ends (what
    ``zstd -t`` does): zstandard's stream reader, and pandas through it, stop silently
    at a truncated frame."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    obj, started = dctx.decompressobj(), False
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                while chunk:
                    obj.decompress(chunk)
                    started = True
                    if not obj.eof:
                        break
                    chunk = obj.unused_data  # the next frame, if any
                    obj, started = dctx.decompressobj(), False
    except zstandard.ZstdError as exc:
        raise UserError(f"{path}: cannot decompress: {exc}".splitlines()[0]) from None
    if started:
        raise UserError(f"{path}: cannot decompress: premature end of the zstd data "
                        "(a truncated file?)")


def check_first_line(path: Path, head: bytes, sep: str) -> None:
    """Refuse a first line longer than ``MAX_FIRST_LINE`` bytes or with more than
    ``MAX_COLUMNS`` fields, fast (``head``: the file's first decompressed bytes)."""
    if b"\n" not in head and len(head) >= MAX_FIRST_LINE:
        raise UserError(f"{path}: the first line is longer than {MAX_FIRST_LINE // 1024} KB: "
                        "not a table of ratings (a header names a few columns)")
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    n = len(re.split(sep if len(sep) > 1 else re.escape(sep), first.strip()))
    if n > MAX_COLUMNS:
        raise UserError(f"{path}: the first line has {n} fields (at most {MAX_COLUMNS}): "
                        "not a table of ratings")


def float32_overflow(values: np.ndarray) -> int | None:
    """Index of the first value whose magnitude float32 cannot hold, else None."""
    bad = np.flatnonzero(np.abs(values) > FLOAT32_MAX)
    return int(bad[0]) if len(bad) else None
