"""A Dask scheduler address, checked before a ``Client`` is made: a malformed address is
an input error, and a port where no Dask scheduler answers (a dashboard's HTTP port, say)
is found within the connect timeout instead of hanging the run.  ``dashboard`` says where
the connected scheduler's dashboard is, for the run to print."""

from __future__ import annotations

import asyncio
import importlib.util
import re

from bench.errors import UserError

#: Dask's comm schemes; "tcp://host:port" is the usual one
SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")
_ADDRESS = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>[^\s:/]+|\[[0-9a-fA-F:]+\]):"
                      r"(?P<port>\d{1,5})/?")


def check_address(address: str) -> None:
    """UserError unless ``address`` looks like ``tcp://host:port``."""
    m = _ADDRESS.fullmatch(address.strip())
    if not m or (m["scheme"] or "tcp") not in SCHEMES or not 0 < int(m["port"]) < 65536:
        raise UserError(f"--scheduler {address!r} is not a Dask scheduler address; give "
                        "tcp://host:port (the scheduler's port, 8786 by default, not its "
                        "dashboard's)")


def probe(address: str, timeout: float) -> None:
    """UserError unless a Dask scheduler answers at ``address`` within ``timeout`` s."""
    try:
        reply = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot reach the Dask scheduler at {address}: no Dask scheduler "
                        f"answered within {timeout:g} s ({reason[:200]})") from None
    except Exception as exc:  # noqa: BLE001 - a peer that speaks another protocol
        raise UserError(f"cannot reach the Dask scheduler at {address}: what answers there "
                        f"is no Dask scheduler ({type(exc).__name__})") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise UserError(f"cannot reach the Dask scheduler at {address}: what answers there "
                        "is no Dask scheduler")


async def _identity(address: str, timeout: float) -> object:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


#: what ``dashboard`` says when the scheduler serves none
NO_DASHBOARD = "none (the scheduler serves no dashboard)"
#: added for a LocalCluster here when bokeh is missing: Dask then serves only a page asking
#: for it
NEEDS_BOKEH = " (bokeh is not installed here: the page only asks for it; pip install 'bokeh>=3.1')"


def dashboard(client: object, local: bool = False) -> str:
    """The address of the dashboard of ``client``'s scheduler, or why there is none;
    ``local``: the scheduler is a LocalCluster of this process."""
    try:
        link = client.dashboard_link  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - no "dashboard" service, a scheduler gone: say none
        link = None
    if not link:
        return NO_DASHBOARD
    if local and importlib.util.find_spec("bokeh") is None:
        return link + NEEDS_BOKEH
    return link
