"""The raw form every reader produces (``RawRatings``: raw ids, long-format side features)
and the input files of one source (``SourceFiles``: an archive's members or a directory).

A reader (``Parser``) only knows how its format's files are laid out; ``coding`` then
validates and codes what it returns into the data model.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.errors import UserError


@dataclass
class RawRatings:
    """Ratings with raw ids, as parsed; side features as (entity raw id, feature name) pairs."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray | None
    label: str  # file named in error messages
    first_line: int = 1  # line number of row 0 in ``label`` (for messages); 0: no lines
    item_feature_pairs: tuple[np.ndarray, np.ndarray] | None = None
    user_feature_pairs: tuple[np.ndarray, np.ndarray] | None = None
    item_titles: tuple[np.ndarray, np.ndarray] | None = None  # (raw item ids, titles)
    #: what ``ratings`` hold: explicit ratings, or implicit-only data (``Dataset.value_kind``)
    value_kind: str = "rating"
    extra_meta: dict[str, Any] = field(default_factory=dict)

    def where(self, index: int) -> str:
        """``file line N`` (text files) or ``file row N`` (1-based) for row ``index``."""
        if self.first_line > 0:
            return f"{self.label} line {index + self.first_line}"
        return f"{self.label} row {index + 1}"


class SourceFiles:
    """Named input files of one source: a zip archive's members or files in a directory.

    ``files`` maps a role (``ratings``, ``items``, ``users``, ...) to one glob pattern or a
    list of them, relative to the archive root or directory.
    """

    def __init__(self, root: Path, files: dict[str, str | list[str]]) -> None:
        self.root = root
        self.files = files
        self._is_zip = root.is_file()
        if self._is_zip:
            with zipfile.ZipFile(root) as zf:
                self._names = sorted(n for n in zf.namelist() if not n.endswith("/"))
        else:
            self._names = sorted(
                str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("*") if p.is_file()
            )

    def _patterns(self, role: str) -> list[str]:
        spec = self.files.get(role, [])
        return [spec] if isinstance(spec, str) else list(spec)

    def members(self, role: str) -> list[str]:
        """Paths matching ``role``'s patterns, in pattern order then sorted."""
        out: list[str] = []
        for pattern in self._patterns(role):
            out += [n for n in self._names if fnmatch(n, pattern) and n not in out]
        return out

    def has(self, role: str) -> bool:
        return bool(self.members(role))

    def missing(self, roles: list[str]) -> list[str]:
        return [" or ".join(self._patterns(r)) for r in roles if not self.has(r)]

    def label(self, member: str) -> str:
        return f"{self.root.name}:{member}" if self._is_zip else str(self.root / member)

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        if self._is_zip:
            with zipfile.ZipFile(self.root) as zf, zf.open(member) as f:
                yield f
        else:
            with open(self.root / member, "rb") as f:
                yield f

    def first(self, role: str) -> str:
        found = self.members(role)
        if not found:
            raise UserError(
                f"{self.root}: no file for {role} ({' or '.join(self._patterns(role))})"
            )
        return found[0]

    def read_text(self, role: str, encoding: str = "utf-8") -> str:
        with self.open(self.first(role)) as f:
            return f.read().decode(encoding)


Parser = Callable[[SourceFiles, dict[str, Any]], RawRatings]
