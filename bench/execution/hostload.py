"""How busy the host was while a trial ran, so a timing measured beside other work is
flagged instead of read as a result.

``HostLoad.start()`` / ``stop()`` bracket a trial: the host's busy CPU time (``/proc/stat``:
every state but idle and iowait) minus the CPU time of the trial's own processes (this
process and everything in its session: the worker is a session leader, so a library's
subprocess, e.g. Spark's JVM, counts as the trial's own) gives the cores other processes
kept busy on average; the 1-minute load average before and after is kept beside it.
Linux only; elsewhere ``stop`` returns the load averages alone (or nothing).  Readers judge
it with ``bench.execution.record.host_quiet``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def host_busy_seconds() -> float | None:
    """CPU seconds the whole host spent busy since boot (all cores), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


def own_cpu_seconds() -> float:
    """CPU seconds of this process and every live process of its session."""
    sid = os.getsid(0)
    total = 0.0
    seen_self = False
    try:
        entries = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        entries = []
    for pid in entries:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2:].split()  # fields after the command name
        if int(rest[3]) != sid and int(pid) != os.getpid():  # field 6: session id
            continue
        seen_self |= int(pid) == os.getpid()
        total += (int(rest[11]) + int(rest[12])) / _TICK  # utime, stime
    if not seen_self:
        times = os.times()
        total += times.user + times.system
    return total


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class HostLoad:
    """Brackets one trial; ``stop`` returns the record's ``host_load``."""

    def start(self) -> HostLoad:
        self.loadavg = _loadavg()
        self.wall = time.perf_counter()
        self.busy = host_busy_seconds()
        self.own = own_cpu_seconds() if self.busy is not None else 0.0
        return self

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        out: dict = {"seconds": round(wall, 3), "loadavg_1m": [self.loadavg, _loadavg()]}
        busy = host_busy_seconds()
        if self.busy is not None and busy is not None and wall > 0:
            own = own_cpu_seconds() - self.own
            other = max(0.0, (busy - self.busy) - own)
            out["own_cpus"] = round(own / wall, 3)
            out["other_cpus"] = round(other / wall, 3)
        return out

