"""Webhook delivery commands: send what is due, list events, replay, re-enable an endpoint."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TextIO

import click
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure import JsonObject
from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.clock import iso_utc
from exposure.secret import redact_url
from exposure.settings import Settings
from exposure.store import audit as audit_log
from exposure.store import outbox as queries
from exposure.store.audit import Actor, AuditAction

STATES = ("pending", "failed", "dead", "delivered")
# (field, heading, width)
TABLE_COLUMNS = (
    ("event_id", "event", 36),
    ("exposure_id", "exposure", 36),
    ("event_type", "type", 20),
    ("state", "state", 9),
    ("attempts", "tries", 5),
    ("last_status", "http", 4),
    ("next_attempt_at", "next attempt", 20),
    ("last_error", "last error", 48),
)


@main.command("deliver")
@handle_errors
def deliver() -> None:
    """Send the webhooks that are due now, then exit (JSON summary on stdout)."""
    from exposure.delivery.sender import Deliverer, open_session

    async def go(settings: Settings) -> tuple[JsonObject, int, int]:
        async with ready_engine(settings) as engine, open_session(settings) as session:
            report = await Deliverer(engine, settings, session).drain()
            async with engine.connect() as conn:
                endpoint = await _endpoint_status(conn, settings)
                pending = (await queries.count_by_state(conn))["pending"]
        emit(
            {
                "delivered": report.delivered,
                "retried": report.retried,
                "dead": report.dead,
                "disabled": report.disabled,
                "not_sent": report.released,
                "waiting": report.waiting,
                "endpoint": endpoint,
            }
        )
        return endpoint, report.dead, pending

    endpoint, dead, pending = run(go)
    # Exit statuses cron can act on: a disabled endpoint (a 410, now or before) sends nothing
    # until someone acts; a dead-lettered event needs a replay.
    if endpoint["state"] == "disabled":
        click.echo(f"error: {_endpoint_line(endpoint, pending)}", err=True)
        sys.exit(1)
    if dead:
        click.echo(
            f"error: {dead} event(s) dead-lettered after the retry window; resend with "
            "`exposure deliveries replay --dead`",
            err=True,
        )
        sys.exit(1)


@main.group("deliveries", invoke_without_command=True)
@click.option("--state", type=click.Choice(STATES), help="Only events in this state.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
)
@click.pass_context
@handle_errors
def deliveries(ctx: click.Context, state: str | None, output: str) -> None:
    """List webhook events (never their payloads) and the endpoint's state.

    Subcommands replay events, show one event's attempts and re-enable a disabled endpoint.
    """
    if ctx.invoked_subcommand is not None:
        return

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            rows = [row async for row in queries.iter_events(conn, state=state)]
            endpoint = await _endpoint_status(conn, settings)
            counts = await queries.count_by_state(conn)
        _write_events(rows, output, sys.stdout)
        click.echo(
            f"{len(rows)} event(s) listed; outbox: "
            + ", ".join(f"{n} {s}" for s, n in counts.items()),
            err=True,
        )
        click.echo(_endpoint_line(endpoint, counts["pending"]), err=True)

    run(go)


@deliveries.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--dead", is_flag=True, help="Replay every dead-lettered event.")
@handle_errors
def replay(event_ids: tuple[str, ...], dead: bool) -> None:
    """Send events again: back to pending, due now, attempt history kept.

    Give EVENT_IDS (webhook-id values, msg_...) or --dead for every dead-lettered event.
    """
    if bool(event_ids) == dead:
        raise click.UsageError("give one or more EVENT_IDS, or --dead (not both)")

    from exposure.triage.replay import replay_events

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            replayed = await replay_events(engine, Actor.cli(), event_ids=event_ids, dead=dead)
        missing = sorted(set(event_ids) - set(replayed))
        emit({"replayed": len(replayed), "event_ids": replayed, "not_replayed": missing})
        if missing:
            click.echo(
                f"{len(missing)} event(s) not replayed: unknown, or already pending", err=True
            )
            sys.exit(1)

    run(go)


@deliveries.command("attempts")
@click.argument("event_id")
@handle_errors
def attempts(event_id: str) -> None:
    """Every delivery attempt of EVENT_ID, oldest first (JSON lines)."""

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            history = await queries.event_attempts(conn, event_id)
        if history is None:
            click.echo(f"no event {event_id!r}", err=True)
            sys.exit(1)
        for row in history:
            click.echo(json.dumps({k: _json(v) for k, v in dataclasses.asdict(row).items()}))

    run(go)


@deliveries.command("enable-endpoint")
@click.argument("url", required=False)
@handle_errors
def enable_endpoint(url: str | None) -> None:
    """Re-enable a webhook endpoint disabled by a 410 Gone (default: EXPOSURE_WEBHOOK_URL).

    Events held back while it was disabled are due at once; the next `exposure deliver` (or
    the daemon, within a second) sends them.
    """

    async def go(settings: Settings) -> None:
        target = url or settings.webhook_url
        if target is None:
            raise click.UsageError("give the URL, or set EXPOSURE_WEBHOOK_URL")
        key = redact_url(target)
        async with ready_engine(settings) as engine, engine.begin() as conn:
            enabled = await queries.enable_endpoint(conn, key)
            if enabled:
                await audit_log.record(conn, Actor.cli(), AuditAction.ENDPOINT_ENABLED, target=key)
            waiting = await queries.count_pending(conn)
        emit({"url": key, "enabled": enabled, "waiting": waiting})
        if not enabled:
            click.echo(f"{key} was not disabled; nothing changed", err=True)

    run(go)


async def _endpoint_status(conn: AsyncConnection, settings: Settings) -> JsonObject:
    """The configured endpoint's state, plus any other endpoint still marked disabled."""
    from exposure.delivery.sender import EndpointState

    status: JsonObject = {"url": None, "state": str(EndpointState.UNCONFIGURED)}
    key = redact_url(settings.webhook_url) if settings.webhook_url else None
    others = []
    for row in await queries.all_endpoints(conn):
        if row.url == key and row.disabled_at is not None:
            status |= {"disabled_at": iso_utc(row.disabled_at), "reason": row.disabled_reason}
        elif row.disabled_at is not None:
            others.append(row.url)
    if key is not None:
        disabled = "disabled_at" in status
        status |= {
            "url": key,
            "state": str(EndpointState.DISABLED if disabled else EndpointState.OK),
        }
    if others:
        status["other_disabled_endpoints"] = others
    return status


def _endpoint_line(endpoint: JsonObject, pending: int) -> str:
    from exposure.delivery.sender import EndpointState

    if endpoint["state"] == EndpointState.UNCONFIGURED:
        return f"endpoint: EXPOSURE_WEBHOOK_URL is not set; {pending} event(s) wait in the outbox"
    if endpoint["state"] == EndpointState.DISABLED:
        return (
            f"endpoint {endpoint['url']}: DISABLED since {endpoint['disabled_at']} "
            f"({endpoint['reason']}); {pending} event(s) wait. After fixing the receiver, run "
            "`exposure deliveries enable-endpoint`"
        )
    return f"endpoint {endpoint['url']}: ok"


def _json(value: object) -> object:
    return iso_utc(value) if isinstance(value, datetime) else value


def _write_events(rows: Sequence[Mapping[str, object]], output: str, stream: TextIO) -> None:
    if output == "jsonl":
        for row in rows:
            stream.write(json.dumps({k: _json(v) for k, v in row.items()}) + "\n")
        return
    stream.write("  ".join(h.ljust(w) for _, h, w in TABLE_COLUMNS).rstrip() + "\n")
    for row in rows:
        cells = (
            ("" if row[name] is None else str(_json(row[name])))[:width].ljust(width)
            for name, _, width in TABLE_COLUMNS
        )
        stream.write("  ".join(cells).rstrip() + "\n")
