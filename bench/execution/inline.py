"""In-memory adapters: ``Adapter`` subclasses handed to ``bench.run`` / ``bench.Experiment``
(defined in a notebook or a script) beside the registered ones, run by the same runner.

Every executor runs a trial in a recbench worker subprocess (``bench.execution.worker``),
which cannot import a class defined in ``__main__`` or in a module it cannot see.  So the
driver pickles each in-memory class *by value* with cloudpickle (its code travels, not its
import path; classes recbench itself defines, which every worker imports, are pickled by
reference) and the task carries it (``TrialTask.adapter_code``); the worker rebuilds it
and registers it under its ``name`` before the trial (``install``).  This works for the
serial and local executors and for Dask workers alike.  A class that cannot be pickled is
refused when it is handed in, with the reason.

Registration lasts for one call (``registered``): a later run of a suite with
``adapters = ["*"]`` does not pick up a class an earlier call was given.
"""

from __future__ import annotations

import base64
import contextlib
import sys
from collections.abc import Iterable, Iterator

from bench.adapter import Adapter
from bench.errors import UserError
from bench.execution import registry

#: modules every worker imports itself: their classes are pickled by reference
_IMPORTED_BY_WORKERS = ("bench", "recbench_adapters", "recbench_plugin_")
#: name -> the pickled class, for the tasks of the current call
_payloads: dict[str, str] = {}
#: name -> payload installed in this (worker) process
_installed: dict[str, str] = {}


class NotRebuilt(Exception):
    """A worker could not rebuild an in-memory adapter class (the trial is failed)."""


def _check(cls: object) -> type[Adapter]:
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UserError(f"{cls!r} is not an adapter class: subclass bench.Adapter "
                        "(see bench/adapter.py) and set its name")
    if not cls.name or cls.name.count(".") < 1 or any(c.isspace() for c in cls.name):
        raise UserError(f"adapter class {cls.__qualname__} needs a name of the form "
                        f"'<library>.<Model>' (class attribute name), got {cls.name!r}")
    return cls


def _pickle(cls: type[Adapter]) -> str:
    import cloudpickle

    module = sys.modules.get(cls.__module__)
    by_value = (module is not None and cls.__module__ != "__main__"
                and not cls.__module__.startswith(_IMPORTED_BY_WORKERS))
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        blob = cloudpickle.dumps(cls)
    except Exception as exc:  # noqa: BLE001 - whatever the class holds that cannot travel
        raise UserError(f"in-memory adapter {cls.name} cannot be sent to the worker "
                        f"processes: pickling {cls.__qualname__} failed "
                        f"({type(exc).__name__}: {exc})") from None
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return base64.b64encode(blob).decode("ascii")


@contextlib.contextmanager
def registered(classes: Iterable[type[Adapter]]) -> Iterator[list[str]]:
    """Register in-memory adapter ``classes`` (and pickle them for the workers) for the
    duration of the block; yields their names.  A name a registered adapter already has,
    or two classes with one name, is a ``UserError``."""
    added: dict[str, type[Adapter]] = {}
    for cls in map(_check, classes):
        if added.get(cls.name, cls) is not cls:
            raise UserError(f"two adapter classes are named {cls.name!r}")
        info = registry.discover().get(cls.name)
        if info is not None and info.cls is cls:
            continue  # a registered class itself: workers import it
        if info is not None or registry.inline_class(cls.name) not in (None, cls):
            owner = info.module if info is not None else "another in-memory class"
            raise UserError(f"adapter name {cls.name!r} is taken by {owner}: give "
                            f"{cls.__qualname__} another name")
        added[cls.name] = cls
    payloads = {name: _pickle(cls) for name, cls in added.items()}
    for name, cls in added.items():
        registry.register_inline(name, cls)
    _payloads.update(payloads)
    try:
        yield list(added)
    finally:
        for name in added:
            registry.unregister_inline(name)
            _payloads.pop(name, None)


def payload(name: str) -> str | None:
    """The pickled class of in-memory adapter ``name`` (None for a registered adapter)."""
    return _payloads.get(name)


def install(name: str, code: str | None) -> None:
    """In a worker: rebuild the in-memory adapter ``name`` from ``code`` and register it
    (nothing to do without ``code``, or when this process has it already)."""
    if code is None or _installed.get(name) == code:
        return
    try:
        import cloudpickle

        cls = cloudpickle.loads(base64.b64decode(code))
    except Exception as exc:  # noqa: BLE001 - e.g. a module missing on this host
        raise NotRebuilt(f"in-memory adapter {name} could not be rebuilt in the worker "
                         f"process: {type(exc).__name__}: {exc}") from None
    registry.register_inline(name, cls)
    _installed[name] = code
