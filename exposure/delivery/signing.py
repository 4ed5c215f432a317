"""Standard Webhooks 1.0 on the wire (docs/architecture.md, "Delivery"): signing each attempt,
what the receiver's answer means, and when to try again.

Any 2xx is delivered. 410 Gone disables the endpoint; the event stays pending and nothing is
sent to that URL until an operator re-enables it. Everything else (3xx, never followed; 4xx;
429; 5xx; timeouts; connection errors) is retried with capped exponential backoff and full
jitter, never sooner than a ``Retry-After`` asks. A 400/401/403/404/422 is retried like a 5xx on
purpose: it almost always means a misconfigured receiver (wrong secret, route not deployed),
which gets fixed, and a forced-reset event must not be dropped meanwhile. An event that still
fails once its retry window (``webhook_retry_hours`` from its creation, or from an operator's
replay) is over is dead-lettered.

``webhook-signature`` holds one ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``
per configured key, separated by spaces. During a key rotation both the old and the new key
sign, so a receiver that knows either one verifies. Written here with the standard library (a
few lines) so the tests can verify with the reference library independently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import aiohttp

from exposure import USER_AGENT
from exposure.clock import full_jitter, retry_after_seconds
from exposure.secret import Secret, redact_url

BACKOFF_BASE_SECONDS = 30.0
# Also the longest wait a Retry-After may impose: a bogus header (a date a year ahead) must not
# park a forced-reset event past its retry window.
BACKOFF_CAP_SECONDS = 6 * 3600.0
# Full jitter may draw ~0; a floor keeps a failing receiver from being hit in a tight loop.
MIN_RETRY_SECONDS = 1.0

_RANDOM = secrets.SystemRandom()


class Outcome(StrEnum):
    """What one delivery attempt came to (``delivery_attempts.outcome``)."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    DISABLED = "disabled"


# The outbox row's state after an attempt with this outcome.
OUTBOX_STATE = {
    Outcome.DELIVERED: "delivered",
    Outcome.RETRY: "pending",
    Outcome.DISABLED: "pending",
    Outcome.DEAD: "dead",
}


def signature(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,...`` signature of ``body`` for ``event_id`` sent at ``timestamp``."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(
    event_id: str, timestamp: int, body: bytes, keys: Sequence[Secret[bytes]]
) -> dict[str, str]:
    """Every header of one delivery attempt (``timestamp`` in unix seconds, set per attempt)."""
    if not keys:
        raise ValueError("at least one signing key is required")
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(key.reveal(), event_id, timestamp, body) for key in keys
        ),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def classify(status: int | None) -> Outcome:
    """Any 2xx is delivered, 410 disables the endpoint, everything else (no answer, 3xx, other
    4xx, 5xx) is retried; whether a retry becomes a dead letter is the retry window's call."""
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.DISABLED
    return Outcome.RETRY


def status_error(status: int | None) -> str | None:
    """The ``last_error`` text for an HTTP answer (never the reply body)."""
    if status is None or 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status}: redirect not followed; configure the final URL"
    if status == 410:
        return "HTTP 410 Gone: endpoint disabled"
    return f"HTTP {status}"


def backoff_delay(attempt: int, *, rng: random.Random = _RANDOM) -> float:
    """Seconds before retry number ``attempt`` (1-based): full jitter over a doubling, capped
    ceiling (30 s, 60 s, 120 s ... 6 h), so a fleet of failing events spreads out."""
    delay = full_jitter(attempt, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS, rng=rng)
    return max(MIN_RETRY_SECONDS, delay)


def verdict(
    status: int | None,
    *,
    attempt: int,
    now: datetime,
    window_ends: datetime,
    retry_after: float | None,
) -> tuple[Outcome, datetime]:
    """The outcome of attempt number ``attempt`` answered ``status`` at ``now``, and when the
    event is next due (``now`` unless it is retried). A failure at or after ``window_ends`` is
    dead; otherwise the retry waits the backoff or the ``Retry-After``, whichever is longer, but
    the last retry lands on the window's end rather than being skipped."""
    outcome = classify(status)
    if outcome is not Outcome.RETRY:
        return outcome, now
    if now >= window_ends:
        return Outcome.DEAD, now
    delay = max(backoff_delay(attempt), retry_after or 0.0)
    return Outcome.RETRY, min(now + timedelta(seconds=delay), window_ends)


def retry_after_delay(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (:func:`exposure.clock.retry_after_seconds`),
    at most :data:`BACKOFF_CAP_SECONDS`; ``None`` when absent or unreadable."""
    seconds = retry_after_seconds(value, now)
    return None if seconds is None else min(seconds, BACKOFF_CAP_SECONDS)


_URL = re.compile(r"https?://[^\s'\"<>]+")
# A reply body is drained (so the connection is reused) up to this size, never stored.
MAX_REPLY_BYTES = 1 << 20


def describe_error(exc: BaseException) -> str:
    """A client error as ``last_error`` text, every URL's query string and password cut (a
    receiver may put a token there)."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), str(exc))
    return f"{type(exc).__name__}: {text}"[:500]


async def drain_reply(response: aiohttp.ClientResponse) -> None:
    """Read and discard a bounded reply, so the connection goes back to the pool."""
    read = 0
    async for chunk in response.content.iter_chunked(65536):
        read += len(chunk)
        if read > MAX_REPLY_BYTES:
            break
