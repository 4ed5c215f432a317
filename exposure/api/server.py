"""Serving an app on a TCP port until told to stop (``exposure api``; the daemon reuses it)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger("exposure.api")

# In-flight requests get this long to finish after a stop signal.
SHUTDOWN_TIMEOUT = 10.0


async def serve(app: web.Application, listen: tuple[str, int], stop: asyncio.Event) -> None:
    """Listen on ``listen`` until ``stop`` is set, then drain in-flight requests and close."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        host, port = listen
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("HTTP API listening on http://%s:%d", host, port)
        await stop.wait()
        log.info("HTTP API stopping: draining in-flight requests")
    finally:
        await runner.cleanup()
