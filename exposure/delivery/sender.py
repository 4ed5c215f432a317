"""Webhook delivery: drains the outbox to the broker's reset service (Standard Webhooks 1.0).

Each round claims the due rows in a short transaction, leasing them to this sender, POSTs them
(at most :data:`MAX_IN_FLIGHT` at once per Deliverer) and records every attempt in a second
short transaction. Delivery is at least once: a sender that dies after the receiver answered but
before recording sends the event again when its lease expires, under the same ``webhook-id``
(receivers de-duplicate on it). What each answer means is :mod:`exposure.delivery.signing`'s call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import operator
import time
from collections.abc import Coroutine
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure import JsonObject
from exposure.clock import utcnow
from exposure.delivery.signing import (
    OUTBOX_STATE,
    Outcome,
    describe_error,
    drain_reply,
    retry_after_delay,
    status_error,
    verdict,
    webhook_headers,
)
from exposure.errors import ConfigurationError
from exposure.metrics import DELIVERIES, DELIVERY_LATENCY
from exposure.secret import redact_url
from exposure.settings import Settings
from exposure.store import outbox as queries
from exposure.store.leases import OWNER_ID_CHARS, new_owner_id
from exposure.store.outbox import AttemptRecord, DueEvent
from exposure.store.reconnect import Backoff, describe, is_transient, pause, retrying

log = logging.getLogger("exposure.delivery.sender")
T = TypeVar("T")

MAX_IN_FLIGHT = 8
# Rounds in progress at once in drain() and run(): while one records its results and claims
# the next rows, the other keeps the MAX_IN_FLIGHT sending slots busy.
PIPELINE = 2
ROUND_SIZE = 50
# Covers the two short transactions around the sends, on a busy database.
LEASE_MARGIN_SECONDS = 30.0
# How often the "nothing is being sent" warning repeats in a long-running daemon.
WARN_EVERY_SECONDS = 600.0


class EndpointState(StrEnum):
    """The configured webhook endpoint: usable, disabled by a 410 Gone, or not configured."""

    OK = "ok"
    DISABLED = "disabled"
    UNCONFIGURED = "unconfigured"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReport:
    """What one call did. ``waiting`` (pending events) is counted by :meth:`Deliverer.drain`,
    and when nothing could be sent (no URL, endpoint disabled) as often as the warning says so."""

    endpoint: EndpointState
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    disabled: int = 0
    released: int = 0
    waiting: int | None = None

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        counts = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name not in ("endpoint", "waiting")
        }
        endpoint = self.endpoint if other.endpoint is EndpointState.OK else other.endpoint
        return DeliveryReport(endpoint=endpoint, waiting=other.waiting, **counts)

    def as_dict(self) -> JsonObject:
        """JSON-ready: the endpoint state as its string."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "endpoint": str(self.endpoint)
        }


class Deliverer:
    """Sends due outbox events to ``settings.webhook_url``; safe to run in many processes."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        session: aiohttp.ClientSession,
        *,
        sender_id: str | None = None,
    ) -> None:
        if settings.webhook_url and not settings.webhook_secrets:
            raise ConfigurationError(
                "EXPOSURE_WEBHOOK_SECRET", "required when EXPOSURE_WEBHOOK_URL is set (whsec_...)"
            )
        self._engine = engine
        self._session = session
        self._url = settings.webhook_url
        # Endpoint state is keyed by the URL without its query string or password, so the
        # database never holds a token that a receiver put in its URL.
        self._endpoint_key = redact_url(settings.webhook_url) if settings.webhook_url else None
        self._keys = settings.webhook_secrets
        self._timeout_seconds = settings.webhook_timeout
        self._timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
        self._window = timedelta(hours=settings.webhook_retry_hours)
        self.sender_id = (sender_id or new_owner_id())[:OWNER_ID_CHARS]
        self._warned_at: dict[str, float] = {}
        # Shared by every round of this Deliverer, so MAX_IN_FLIGHT bounds the whole sender.
        self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        # Set on a 410; other rounds stop sending at once. ``_gone_unrecorded`` counts 410s
        # not yet written to the database: until then a round must not trust the database's
        # "endpoint enabled" and clear the flag.
        self._gone = asyncio.Event()
        self._gone_unrecorded = 0
        # Set by :meth:`wake` (an ingest in this process queued events): an idle run() loop
        # claims at once instead of at its next poll.
        self._queued = asyncio.Event()

    def wake(self) -> None:
        """Events were just queued in this process: :meth:`run` claims them now. (Events
        queued by other processes are found by its poll.)"""
        self._queued.set()

    async def deliver_due(self, *, limit: int = 100) -> DeliveryReport:
        """Claim up to ``limit`` events due now, send them (bounded concurrency), record."""
        return await self._round(limit=limit, due_by=None, stop=None)

    async def drain(self, *, limit: int = ROUND_SIZE) -> DeliveryReport:
        """Deliver everything due when called (events rescheduled meanwhile wait), then count
        what is left pending. For ``exposure deliver``."""
        started = utcnow()

        async def worker() -> DeliveryReport:
            total = DeliveryReport(endpoint=EndpointState.OK)
            while True:
                report = await self._round(limit=limit, due_by=started, stop=None)
                total += report
                if not report.claimed or report.endpoint is not EndpointState.OK:
                    return total

        reports = await _all_or_none([worker() for _ in range(PIPELINE)])
        async with self._engine.connect() as conn:
            waiting = await queries.count_pending(conn)
        return replace(functools.reduce(operator.add, reports), waiting=waiting)

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 1.0) -> None:
        """Deliver until ``stop`` is set; whenever nothing was due, wait ``idle_seconds`` or
        until :meth:`wake`, whichever comes first.

        On ``stop`` no new send starts; sends in flight finish and are recorded first. A
        database outage pauses delivery (with a warning) instead of ending it.
        """

        async def worker() -> None:
            backoff = idle_seconds
            while not stop.is_set():
                self._queued.clear()  # a wake from here on means another round
                try:
                    report = await self._round(limit=ROUND_SIZE, due_by=None, stop=stop)
                except Exception as error:
                    if not is_transient(error):
                        raise
                    # A lost connection (the database restarting, failing over): back off;
                    # the pool hands the next round a fresh connection.
                    backoff = min(max(backoff * 2, idle_seconds), 60.0)
                    log.warning(
                        "delivery paused: database unavailable (%s); retrying in %.0f s",
                        describe(error),
                        backoff,
                    )
                    await pause(stop, backoff)
                    continue
                backoff = idle_seconds
                if not report.claimed:
                    await _wait_either(stop, self._queued, idle_seconds)
                elif report.endpoint is not EndpointState.OK:
                    await pause(stop, idle_seconds)

        await _all_or_none([worker() for _ in range(PIPELINE)])

    async def _round(
        self, *, limit: int, due_by: datetime | None, stop: asyncio.Event | None
    ) -> DeliveryReport:
        if self._url is None or self._endpoint_key is None:
            waiting = None
            if self._warning_due("unconfigured"):  # counting a large backlog is not free
                async with self._engine.connect() as conn:
                    waiting = await queries.count_pending(conn)
                log.warning(
                    "EXPOSURE_WEBHOOK_URL is not set: no webhook is sent; %d event(s) wait in "
                    "the outbox and go out once it is configured",
                    waiting,
                )
            return DeliveryReport(endpoint=EndpointState.UNCONFIGURED, waiting=waiting)
        now = utcnow()
        # Long enough that every claimed row is sent and recorded within its lease even if
        # every request (this round's and the other rounds' ahead of it) runs into the timeout.
        waves = math.ceil(PIPELINE * limit / MAX_IN_FLIGHT)
        lease = self._timeout_seconds * waves + LEASE_MARGIN_SECONDS
        async with self._engine.begin() as conn:
            endpoint = await queries.endpoint(conn, self._endpoint_key)
            if endpoint is not None and endpoint.disabled_at is not None:
                waiting = None
                if self._warning_due("disabled"):
                    waiting = await queries.count_pending(conn)
                    log.warning(_DISABLED_ALERT, self._endpoint_key, waiting)
                return DeliveryReport(endpoint=EndpointState.DISABLED, waiting=waiting)
            if self._gone.is_set():
                if self._gone_unrecorded:
                    return DeliveryReport(endpoint=EndpointState.DISABLED)
                self._gone.clear()  # an operator re-enabled the endpoint
            events = await queries.claim_due(
                conn,
                owner=self.sender_id,
                now=now,
                due_by=due_by or now,
                lease_until=now + timedelta(seconds=lease),
                limit=limit,
            )
        if not events:
            return DeliveryReport(endpoint=EndpointState.OK)
        results = await asyncio.gather(*(self._send(e, self._url, stop) for e in events))
        records = [r for r in results if r is not None]
        unsent = [e.id for e, r in zip(events, results, strict=True) if r is None]
        key = self._endpoint_key
        tries = 0

        async def record() -> DeliveryReport:
            nonlocal tries
            tries += 1
            return await self._record(key, records, unsent, again=tries > 1)

        try:
            # The sends happened: record them even if the connection drops meanwhile, for
            # as long as the rows stay leased to us (after that another sender resends them).
            return await retrying(
                record, what="recording webhook attempts", backoff=Backoff(patience=lease)
            )
        finally:
            # Recorded, or failed to record (then the lease expires and a later round meets
            # the 410 again): either way these no longer hold other rounds back.
            self._gone_unrecorded -= sum(r.outcome is Outcome.DISABLED for r in records)

    async def _send(
        self, event: DueEvent, url: str, stop: asyncio.Event | None
    ) -> AttemptRecord | None:
        async with self._gate:
            if self._gone.is_set() or (stop is not None and stop.is_set()):
                return None
            body = event.payload.encode("utf-8")
            attempted_at = utcnow()
            headers = webhook_headers(
                event.event_id, int(attempted_at.timestamp()), body, self._keys
            )
            status = retry_after = error = None
            started = time.perf_counter()
            try:
                # Redirects are never followed: aiohttp would turn the POST into a GET.
                async with self._session.post(
                    url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
                ) as response:
                    status, retry_after = response.status, response.headers.get("Retry-After")
                    await drain_reply(response)
            except TimeoutError:
                error = f"timed out after {self._timeout_seconds:g} s"
            except aiohttp.ClientError as exc:
                error = describe_error(exc)
            latency = time.perf_counter() - started
            now = utcnow()
            outcome, next_at = verdict(
                status,
                attempt=event.attempts + 1,
                now=now,
                window_ends=event.window_start + self._window,
                retry_after=retry_after_delay(retry_after, now),
            )
            if outcome is Outcome.DISABLED:
                self._gone_unrecorded += 1
                self._gone.set()
            DELIVERIES.labels(outcome=outcome).inc()
            if status is not None:
                DELIVERY_LATENCY.observe(latency)
            delivered = outcome is Outcome.DELIVERED
            return AttemptRecord(
                outbox_id=event.id,
                attempt=event.attempts + 1,
                attempted_at=attempted_at,
                status_code=status,
                latency_ms=round(latency * 1000, 3),
                outcome=outcome,
                error=error or status_error(status),
                state=OUTBOX_STATE[outcome],
                # A 410 is not the event's fault: it stays pending and due until re-enabled.
                next_attempt_at=event.next_attempt_at if delivered else next_at,
                delivered_at=now if delivered else None,
            )

    async def _record(
        self, key: str, records: list[AttemptRecord], unsent: list[int], *, again: bool = False
    ) -> DeliveryReport:
        by = {o: sum(r.outcome == o for r in records) for o in Outcome}
        waiting: int | None = None
        async with self._engine.begin() as conn:
            await queries.record_attempts(conn, self.sender_id, records, again=again)
            await queries.release(conn, self.sender_id, unsent)
            if by[Outcome.DISABLED]:
                await queries.disable_endpoint(conn, key, now=utcnow(), reason="HTTP 410 Gone")
                waiting = await queries.count_pending(conn)
        self._log_round(records, by, waiting)
        return DeliveryReport(
            endpoint=EndpointState.DISABLED if waiting is not None else EndpointState.OK,
            claimed=len(records) + len(unsent),
            delivered=by[Outcome.DELIVERED],
            retried=by[Outcome.RETRY],
            dead=by[Outcome.DEAD],
            disabled=by[Outcome.DISABLED],
            released=len(unsent),
        )

    def _log_round(
        self, records: list[AttemptRecord], by: dict[Outcome, int], waiting: int | None
    ) -> None:
        if waiting is not None:
            self._warned_at["disabled"] = time.monotonic()  # the next reminder is due later
            log.error(_DISABLED_ALERT, self._endpoint_key, waiting)
        if by[Outcome.RETRY]:
            errors = sorted({r.error or "" for r in records if r.outcome is Outcome.RETRY})
            log.warning(
                "webhook: %d attempt(s) failed and will be retried with backoff (%s)",
                by[Outcome.RETRY],
                "; ".join(errors[:5]),
            )
        if by[Outcome.DEAD]:
            log.error(
                "webhook: %d event(s) dead-lettered after %.0f h of retries; list them with "
                "`exposure deliveries --state dead`, resend with "
                "`exposure deliveries replay --dead`",
                by[Outcome.DEAD],
                self._window.total_seconds() / 3600,
            )

    def _warning_due(self, key: str) -> bool:
        """True at most once per WARN_EVERY_SECONDS per key: a daemon polls every second."""
        now = time.monotonic()
        last = self._warned_at.get(key)
        if last is not None and now - last < WARN_EVERY_SECONDS:
            return False
        self._warned_at[key] = now
        return True


_DISABLED_ALERT = (
    "webhook endpoint %s answered 410 Gone and is DISABLED: nothing is sent to it and %d "
    "event(s) wait in the outbox. Fix the receiver, then run "
    "`exposure deliveries enable-endpoint` to resume delivery."
)


async def _all_or_none(workers: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the workers; if one fails, cancel the others and raise its own exception."""
    tasks = [asyncio.ensure_future(worker) for worker in workers]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Until ``stop`` or ``wake`` is set, or ``seconds`` have passed."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def open_session(settings: Settings) -> aiohttp.ClientSession:
    """A session for a command that has no process-wide one (``exposure deliver``)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout))
