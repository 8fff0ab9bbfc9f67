"""Adapter discovery: every ``Adapter`` subclass with a ``name`` in ``recbench_adapters.*``.

Extra adapter modules (a user's own library wrapper, or the fault-injection adapters the
tests use) are loaded from the ``*.py`` files of directories listed in the environment
variable ``RECBENCH_ADAPTERS_PATH`` (os.pathsep-separated); worker processes inherit it.

A module whose library is not installed is reported as unavailable with the import error,
so ``bench list`` can say why, and the other adapters still work.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from bench.adapter import Adapter
from bench.errors import UserError


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    module: str
    cls: type[Adapter] | None
    error: str | None  # why it is unavailable here


def _import_file(path: Path) -> ModuleType:
    modname = f"recbench_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


def _modules() -> list[tuple[str, object]]:
    """(module name, loader thunk) for built-in and plugin adapter modules."""
    import recbench_adapters

    mods: list[tuple[str, object]] = [
        (f"recbench_adapters.{m.name}", lambda n=m.name: importlib.import_module(
            f"recbench_adapters.{n}"))
        for m in sorted(pkgutil.iter_modules(recbench_adapters.__path__), key=lambda m: m.name)
    ]
    for d in filter(None, os.environ.get("RECBENCH_ADAPTERS_PATH", "").split(os.pathsep)):
        for path in sorted(Path(d).glob("*.py")):
            mods.append((f"recbench_plugin_{path.stem}", lambda p=path: _import_file(p)))
    return mods


@cache
def discover() -> dict[str, AdapterInfo]:
    found: dict[str, AdapterInfo] = {}
    for modname, load in _modules():
        short = modname.rsplit(".", 1)[-1].removeprefix("recbench_plugin_")
        try:
            module = load()  # type: ignore[operator]
        except ImportError as exc:  # the wrapped library is missing or broken
            found[f"{short}.*"] = AdapterInfo(f"{short}.*", modname, None, str(exc))
            continue
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Adapter)
                and obj.name
                and obj.__module__ == modname
            ):
                found[obj.name] = AdapterInfo(obj.name, modname, obj, None)
    return found


def get(name: str) -> type[Adapter]:
    infos = discover()
    info = infos.get(name)
    if info is None:
        known = ", ".join(sorted(n for n, i in infos.items() if i.cls is not None))
        raise UserError(f"unknown adapter {name!r}; known adapters: {known}")
    if info.cls is None:
        raise UserError(f"adapter {name!r} is unavailable here: {info.error}")
    return info.cls


def available() -> list[str]:
    return sorted(n for n, i in discover().items() if i.cls is not None)
