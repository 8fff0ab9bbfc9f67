"""Adapter discovery: every ``Adapter`` subclass with a ``name`` in ``recbench_adapters.*``.

A module whose library is not installed is reported as unavailable with the import error,
so ``bench list`` can say why, and the other adapters still work.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from bench.adapter import Adapter
from bench.errors import UserError


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    module: str
    cls: type[Adapter] | None
    error: str | None  # why it is unavailable here


@cache
def discover() -> dict[str, AdapterInfo]:
    import recbench_adapters

    found: dict[str, AdapterInfo] = {}
    for mod in sorted(pkgutil.iter_modules(recbench_adapters.__path__), key=lambda m: m.name):
        modname = f"recbench_adapters.{mod.name}"
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:  # the wrapped library is missing or broken
            found[f"{mod.name}.*"] = AdapterInfo(f"{mod.name}.*", modname, None, str(exc))
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
