"""Waiting in tests: on a condition, with a deadline, never for a fixed time.

A test that must see something happen polls for it (:func:`eventually`); a test that must see
something NOT happen waits for a positive sign that the work which could have done it is over
(a stopped process, a drained queue, a counter that stopped at a known completion point).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool | Awaitable[bool]]


async def eventually(
    condition: Condition, *, within: float = 30.0, every: float = 0.02, what: str = ""
) -> None:
    """Return as soon as ``condition()`` (plain or awaitable) holds; fail after ``within``
    seconds. ``every`` is only the polling interval: the wait ends at the first poll that sees
    the condition."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what or condition}")
        await asyncio.sleep(every)
