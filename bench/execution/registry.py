"""Adapter discovery: every ``Adapter`` subclass with a ``name`` in ``recbench_adapters.*``
(one module per library, or one package whose ``__init__`` re-exports its submodules' classes).

Extra adapter modules (a user's own library wrapper, or the fault-injection adapters the
tests use) are loaded from the ``*.py`` files of directories listed in the environment
variable ``RECBENCH_ADAPTERS_PATH`` (os.pathsep-separated); worker processes inherit it.

A variant of an adapter that only changes defaults is a ``Preset`` declared next to it in
the same module, not a class of its own: the registry lists it under its own name.

A module whose library is not installed is reported as unavailable with the import error,
so ``bench list`` can say why, and the other adapters still work.

Modules are imported when first needed: a name or pattern whose library part has no
wildcard (``baseline.Popularity``, ``implicit.*``) imports that library's module alone (the
module named like the library, or listed for it in ``recbench_adapters.LIBRARIES``) and the
plugin modules; a pattern like ``*ALS`` and the catalogue (``bench list``) import them all.
Importing every module costs seconds (PyTorch, scikit-learn, Spark): a run of baselines
need not pay it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.adapter import Adapter
from bench.errors import UserError


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    module: str
    cls: type[Adapter] | None
    error: str | None  # why it is unavailable here


@dataclass(frozen=True)
class Preset:
    """A registered adapter that is ``base`` with other ``defaults``, e.g. the genre prior on.

    ``adapter()`` builds it as a subclass of ``base`` named ``name`` whose ``__init__``
    signature is the base's with ``defaults`` replaced (so ``get_params``, records and
    suites see the same parameters as the base's), and whose class attributes are updated
    with ``traits``: what the flipped defaults change (capabilities, search space).
    """

    name: str
    base: type[Adapter]
    defaults: Mapping[str, Any]
    traits: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    def adapter(self) -> type[Adapter]:
        base = self.base
        signature = inspect.signature(base.__init__)
        unknown = set(self.defaults) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{self.name}: {base.name} has no parameter {', '.join(unknown)}")
        unknown = {t for t in self.traits if not hasattr(base, t)}
        if unknown:
            raise TypeError(f"{self.name}: {base.name} has no attribute {', '.join(unknown)}")
        preset = signature.replace(parameters=[
            p.replace(default=self.defaults[p.name]) if p.name in self.defaults else p
            for p in signature.parameters.values()
        ])

        def __init__(self: Adapter, *args: Any, **kwargs: Any) -> None:
            arguments = preset.bind(self, *args, **kwargs)
            arguments.apply_defaults()
            base.__init__(*arguments.args, **arguments.kwargs)

        __init__.__signature__ = preset  # type: ignore[attr-defined]
        class_name = "".join(c if c.isalnum() else "_" for c in self.name.split(".")[-1])
        namespace = {
            "__init__": __init__,
            "__module__": base.__module__,
            "__qualname__": class_name,
            "__doc__": self.doc or base.__doc__,
            "name": self.name,
            "preset_of": base.name,
            **self.traits,
        }
        return type(class_name, (base,), namespace)


def _import_file(path: Path) -> ModuleType:
    modname = f"recbench_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


@cache
def _modules() -> list[tuple[str | None, str, object]]:
    """(library, module name, loader thunk) for built-in and plugin adapter modules; a
    plugin's library is None (it may register any names, so it is always loaded).  Read
    once per process, as ``RECBENCH_ADAPTERS_PATH`` is."""
    import recbench_adapters

    libraries = getattr(recbench_adapters, "LIBRARIES", {})
    mods: list[tuple[str | None, str, object]] = [
        (libraries.get(m.name, m.name), f"recbench_adapters.{m.name}",
         lambda n=m.name: importlib.import_module(f"recbench_adapters.{n}"))
        for m in sorted(pkgutil.iter_modules(recbench_adapters.__path__), key=lambda m: m.name)
    ]
    for d in filter(None, os.environ.get("RECBENCH_ADAPTERS_PATH", "").split(os.pathsep)):
        for path in sorted(Path(d).glob("*.py")):
            mods.append((None, f"recbench_plugin_{path.stem}", lambda p=path: _import_file(p)))
    return mods


def _defined_in(cls: type, modname: str) -> bool:
    """``cls`` belongs to the library module ``modname``: defined in it or, when the library
    is a package (``recbench_adapters.surprise``), in one of its submodules; a class it only
    imports from elsewhere (another library's adapter, a base class) is not registered twice."""
    return cls.__module__ == modname or cls.__module__.startswith(modname + ".")


#: the adapters of each module imported so far, by module name
_loaded: dict[str, dict[str, AdapterInfo]] = {}


def _load(modname: str, load: Any) -> dict[str, AdapterInfo]:
    """The adapters of one module (imported once per process)."""
    if modname not in _loaded:
        _loaded[modname] = _scan(modname, load)
    return _loaded[modname]


def _scan(modname: str, load: Any) -> dict[str, AdapterInfo]:
    short = modname.rsplit(".", 1)[-1].removeprefix("recbench_plugin_")
    try:
        module = load()
    except ImportError as exc:  # the wrapped library is missing or broken
        return {f"{short}.*": AdapterInfo(f"{short}.*", modname, None, str(exc))}
    found: dict[str, AdapterInfo] = {}
    for obj in vars(module).values():
        if isinstance(obj, Preset) and _defined_in(obj.base, modname):
            found[obj.name] = AdapterInfo(obj.name, modname, obj.adapter(), None)
        elif (
            isinstance(obj, type)
            and issubclass(obj, Adapter)
            and obj.name
            and _defined_in(obj, modname)
        ):
            found[obj.name] = AdapterInfo(obj.name, modname, obj, None)
    return found


def discover(pattern: str | None = None) -> dict[str, AdapterInfo]:
    """Every adapter of every module; given a name or pattern whose library part (before the
    first dot) has no wildcard, those of that library's module and the plugins only (all of
    them when no built-in module is that library's)."""
    library = None
    if pattern is not None and "." in pattern:
        head = pattern.split(".", 1)[0]
        library = None if any(c in head for c in "*?[") else head
    return _discover(library)


@cache
def _discover(library: str | None) -> dict[str, AdapterInfo]:
    """``discover`` for one library (None: all), once per process."""
    modules = _modules()
    if library is not None and any(lib == library for lib, _, _ in modules):
        modules = [m for m in modules if m[0] in (library, None)]
    found: dict[str, AdapterInfo] = {}
    for _, modname, load in modules:
        found.update(_load(modname, load))
    return found


#: adapter classes handed to the Python API in memory (``bench.execution.inline``), by name
_inline: dict[str, type[Adapter]] = {}


def register_inline(name: str, cls: type[Adapter]) -> None:
    """Make ``get(name)`` return ``cls`` in this process (``bench.execution.inline``)."""
    _inline[name] = cls


def unregister_inline(name: str) -> None:
    _inline.pop(name, None)


def inline_class(name: str) -> type[Adapter] | None:
    """The in-memory adapter class registered as ``name`` in this process, or None."""
    return _inline.get(name)


def known(name: str) -> bool:
    """``name`` is an adapter of this process: registered, in memory, or unavailable here."""
    return name in _inline or name in discover(name) or unavailable_reason(name) is not None


def get(name: str) -> type[Adapter]:
    if name in _inline:
        return _inline[name]
    infos = discover(name)
    info = infos.get(name)
    if info is None and unavailable_reason(name) is not None:  # its library is missing
        raise UserError(f"adapter {name!r} is unavailable here: {unavailable_reason(name)}")
    if info is None:
        names = ", ".join(available())
        raise UserError(f"unknown adapter {name!r}; known adapters: {names}")
    if info.cls is None:
        raise UserError(f"adapter {name!r} is unavailable here: {info.error}")
    return info.cls


def unavailable_reason(name: str) -> str | None:
    """Why adapter ``name`` (or its library module, ``spark.*``) cannot be imported here,
    e.g. an optional extra not installed; None when it is available or unknown."""
    infos = discover(name)
    for key in (name, f"{name.split('.', 1)[0]}.*"):
        info = infos.get(key)
        if info is not None and info.cls is None:
            return info.error
    return None


def available(pattern: str | None = None) -> list[str]:
    """Names of the adapters usable here: registered ones, and in-memory ones; given a
    pattern, a list that holds at least every name it matches (``discover``)."""
    return sorted({*(n for n, i in discover(pattern).items() if i.cls is not None), *_inline})
