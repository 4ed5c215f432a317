"""``GET /range/{prefix}``: the leaked-password corpus in the Pwned Passwords range format.

Each line is ``SUFFIX:COUNT``: the 35 upper-case hex characters of the SHA-1 after the 5-hex
prefix, and how often it was seen; lines end with CRLF, as the public service's do. With
``Add-Padding: true`` the response is filled with random suffixes of count 0 up to a random
total between :data:`PAD_MIN` and :data:`PAD_MAX` rows, so its size says nothing about the prefix.

The process serving this route also folds the digests that ingestion stages into the corpus
(:func:`keep_corpus_compact`), every :data:`COMPACT_EVERY_S` seconds: a dump's passwords reach
``/range`` within seconds of its ingest, and the ingest itself never waits for them. Between
folds it settles the folded segments into ``leaked_passwords``, a slice at a time. Every
:data:`SWEEP_EVERY_S` it also sweeps the spool of batches that never committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import bad_request
from exposure.api.params import query_params
from exposure.api.scopes import Scope
from exposure.store import corpus, corpus_segments
from exposure.store.reconnect import describe, is_transient

log = logging.getLogger("exposure.api")

routes = web.RouteTableDef()

PREFIX_HEX = 5
SUFFIX_HEX = 40 - PREFIX_HEX
PAD_MIN = 800
PAD_MAX = 1000
_PREFIX = re.compile(r"[0-9A-Fa-f]{5}")
# The 20-bit prefix sits at the top of the 160-bit digest.
_SHIFT = 160 - 4 * PREFIX_HEX
_TOP = 1 << (4 * PREFIX_HEX)
COMPACT_EVERY_S = 5.0
SETTLE_PAUSE_S = 0.1
SWEEP_EVERY_S = 3600.0


async def keep_corpus_compact(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: fold staged corpus digests, and settle folded ones, in the
    background while serving.

    At shutdown the fold in progress finishes its current transaction (about a second) and
    stops: cancelling it inside a database call would leave the driver's thread answering a
    closed event loop. What is left staged is folded next time.
    """
    stop = asyncio.Event()

    async def loop() -> None:
        swept = float("-inf")  # the spool of a SQLite database is swept at start, then hourly
        engine = app[keys.ENGINE]
        while not stop.is_set():
            settling = False
            try:
                await corpus.compact(engine, stop=stop, settle=False)
                # One slice at a time: digests staged meanwhile are folded, and so served,
                # before the next slice, however many wait to settle.
                settling = await corpus.settle_slice(engine) is not None
                if time.monotonic() - swept >= SWEEP_EVERY_S and not stop.is_set():
                    await corpus.sweep_spool(engine)
                    swept = time.monotonic()
            except Exception as error:  # a database hiccup must not stop the loop or the server
                if is_transient(error):
                    log.warning(
                        "corpus compaction paused: database unavailable (%s); retrying in %.0f s",
                        describe(error),
                        COMPACT_EVERY_S,
                    )
                else:
                    log.exception("corpus compaction failed; retrying")
            # Between two slices, a short pause lets the ingests' transactions take the lock.
            pause = SETTLE_PAUSE_S if settling else COMPACT_EVERY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    task = asyncio.create_task(loop())
    yield
    stop.set()
    await task


def key_bounds(prefix: str) -> tuple[bytes, bytes | None]:
    """The half-open range ``[low, high)`` of 20-byte digests starting with ``prefix``.

    Five hex digits are two and a half bytes, so the bounds are built on the integer value:
    ``ABCDE`` -> ``ab cd e0 00..`` to ``ab cd f0 00..``. The last prefix, ``FFFFF``, has no
    20-byte upper bound: every digest from its low bound up belongs to it.
    """
    value = int(prefix, 16)
    low = (value << _SHIFT).to_bytes(20, "big")
    if value + 1 == _TOP:
        return low, None
    return low, ((value + 1) << _SHIFT).to_bytes(20, "big")


def padding(real: set[str], count: int) -> set[str]:
    """``count`` random suffixes that are not in ``real``."""
    pads: set[str] = set()
    while len(pads) < count:
        suffix = secrets.token_hex(18)[:SUFFIX_HEX].upper()
        if suffix not in real:
            pads.add(suffix)
    return pads


def range_body(rows: dict[str, int], *, pad: bool) -> str:
    """Lines sorted by suffix (padding interleaved, indistinguishable by position), CRLF."""
    if pad:
        target = PAD_MIN + secrets.randbelow(PAD_MAX - PAD_MIN + 1)
        rows = rows | dict.fromkeys(padding(set(rows), max(0, target - len(rows))), 0)
    return "\r\n".join(f"{suffix}:{count}" for suffix, count in sorted(rows.items()))


@routes.get("/range/{prefix}")
@requires(Scope.READ, open_when=lambda settings: settings.range_public)
async def password_range(request: web.Request) -> web.Response:
    """Suffixes and counts of every leaked password whose SHA-1 starts with the prefix."""
    query_params(request, ())
    prefix = request.match_info["prefix"]
    if not _PREFIX.fullmatch(prefix):
        raise bad_request(
            "the prefix must be exactly 5 hexadecimal characters (the start of a SHA-1)",
            "invalid_prefix",
        )
    low, high = key_bounds(prefix)
    async with request.app[keys.ENGINE].connect() as conn:
        found = await corpus_segments.corpus_range(conn, low, high)
    rows = {sha1.hex().upper()[PREFIX_HEX:]: count for sha1, count in found}
    pad = request.headers.get("Add-Padding", "").strip().lower() == "true"
    # The answer changes only when a dump is ingested: caches may keep it briefly (shared
    # caches only when the range is public), padded and unpadded answers apart.
    audience = "public" if request.app[keys.SETTINGS].range_public else "private"
    return web.Response(
        text=range_body(rows, pad=pad),
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": f"{audience}, max-age=300", "Vary": "Add-Padding"},
    )
