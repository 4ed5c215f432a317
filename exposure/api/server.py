"""Serving an app on a TCP port until told to stop (``exposure api``; the daemon reuses it)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from exposure.errors import ConfigurationError

log = logging.getLogger("exposure.api")

# In-flight requests get this long to finish after a stop signal.
SHUTDOWN_TIMEOUT = 10.0

_LISTEN_PROBLEMS = {
    errno.EADDRINUSE: "{where} is already in use (another exposure api or daemon, or another "
    "server); stop it or choose another host:port",
    errno.EADDRNOTAVAIL: "{where} is not an address of this machine",
    errno.EACCES: "{where} needs privileges this user lacks (ports below 1024); choose a port "
    "from 1024 up",
}


class CannotListen(ConfigurationError):
    """The API's address cannot be listened on; the message says why, naming the setting."""

    def __init__(self, listen: tuple[str, int], error: OSError) -> None:
        where = "{}:{}".format(*listen)
        template = _LISTEN_PROBLEMS.get(error.errno or 0)
        if isinstance(error, socket.gaierror):
            problem = f"cannot resolve the host of {where}"
        elif template is not None:
            problem = template.format(where=where)
        else:
            problem = f"cannot listen on {where} ({error.strerror or type(error).__name__})"
        super().__init__("EXPOSURE_API_LISTEN", problem)


@asynccontextmanager
async def listening(
    app: web.Application, listen: tuple[str, int], *, shutdown_timeout: float = SHUTDOWN_TIMEOUT
) -> AsyncIterator[tuple[str, int]]:
    """Listen on ``listen`` (raising :class:`CannotListen` at once if the address is taken)
    and yield the address bound; on leaving, drain in-flight requests and close."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        host, port = listen
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise CannotListen(listen, error) from None
        bound = runner.addresses[0][:2] if runner.addresses else listen
        log.info("HTTP API listening on http://%s:%d", bound[0], bound[1])
        yield bound[0], int(bound[1])
        log.info("HTTP API stopping: draining in-flight requests")
    finally:
        await runner.cleanup()


async def serve(app: web.Application, listen: tuple[str, int], stop: asyncio.Event) -> None:
    """Listen on ``listen`` until ``stop`` is set, then drain in-flight requests and close."""
    async with listening(app, listen):
        await stop.wait()
