"""Progress of a trial's long stages (load, split, fit iterations, scoring blocks).

Library code calls ``report``; it does nothing unless the process that runs the trial set a
sink (recbench's worker sends each report to the driver, which shows it on the run's
progress line), so a 10-minute trial does not look hung.  Reports are rate-limited: at most
one per ``INTERVAL`` seconds unless ``force`` (stage changes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

INTERVAL = 10.0
#: the stage whose report starts a trial's time limit (the warm-up, then fit and evaluation):
#: what comes before (the worker's start and imports, building the adapter, loading and
#: splitting the data) has ``STARTUP_ALLOWANCE`` seconds on top of the limit, so a loaded
#: machine that imports slowly does not turn a failure or a fast model into a ``timeout``
CLOCK_STARTS = "warming up"
STARTUP_ALLOWANCE = 600.0
_sink: Callable[[str], None] | None = None
_last = 0.0


def set_sink(sink: Callable[[str], None] | None) -> None:
    """Where reports go (None: nowhere)."""
    global _sink, _last
    _sink, _last = sink, 0.0


def report(stage: str, done: int | None = None, total: int | None = None,
           force: bool = False) -> None:
    """Report ``stage`` (with ``done`` of ``total`` units) if a sink is set and it is time."""
    global _last
    if _sink is None:
        return
    now = time.monotonic()
    if not force and now - _last < INTERVAL:
        return
    _last = now
    _sink(stage if total is None else f"{stage} {done:,}/{total:,}")
