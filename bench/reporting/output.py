"""Where ``report --output`` writes: only a regular file is ever replaced.

* ``-``: stdout;
* an existing symlink, device, fifo or socket (``/dev/stdout``, ``/dev/null``, a named
  pipe, a link to a file elsewhere): written through, in place; the link, device or fifo
  is never replaced by a regular file;
* a new path or a regular file: written through a temporary file renamed into place
  (``store.write_atomic``), so a failed write leaves the old file whole; a new file gets
  the mode of any new file (0666 less the umask), a replaced one keeps its mode.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from bench.errors import UserError
from bench.execution import store

STDOUT = "-"


def kind(path: Path | str) -> str:
    """``stdout``, ``through`` (symlink, device, fifo, socket), ``directory`` or ``file``
    (a regular file, or nothing yet)."""
    if str(path) == STDOUT:
        return "stdout"
    if os.path.islink(path):
        return "through"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "through"


def check(path: Path | str) -> str:
    """``kind(path)``; a directory is refused (``UserError``, one line)."""
    where = kind(path)
    if where == "directory":
        raise UserError(f"--output {path} is a directory; give the path of a file (or - for "
                        "stdout)")
    return where


def describe(path: Path | str) -> str:
    return "stdout" if kind(path) == "stdout" else str(path)


def write(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` as the module docstring says; OSError as it comes."""
    where = check(path)
    if where == "stdout":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    elif where == "through":
        with open(path, "wb") as fh:  # follows a symlink; truncates a regular target
            fh.write(data)
    else:
        store.write_atomic(Path(path), lambda fh: fh.write(data))
