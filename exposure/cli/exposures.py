"""``exposure exposures`` (list, show, resolve, dismiss) and ``exposure audit`` (the audit log).

What the console's worklist and exposure page do, for a terminal: the same queries, the same
resolution service, the same audit entries (recorded as the operating-system user).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.cli.render import write_exposures
from exposure.clock import NaiveTimestamp, iso_utc, parse_iso
from exposure.errors import FatalError
from exposure.settings import Settings

STATES = ("open", "reset_completed", "dismissed")
_ID_PREFIX = re.compile(r"[0-9a-f-]{8,36}")


class UnknownExposure(FatalError):
    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"exposure {text!r}: {problem}")


async def _exposure_id(conn: AsyncConnection, text: str) -> str:
    """A full exposure id, or the unique exposure whose id starts with ``text`` (the table
    shows the first 8 characters)."""
    from exposure.store.exposure_detail import find_by_prefix

    text = text.strip().lower()
    if not _ID_PREFIX.fullmatch(text):
        raise UnknownExposure(text, "give an exposure id, or at least its first 8 characters")
    found = await find_by_prefix(conn, text)
    if not found:
        raise UnknownExposure(text, "no exposure has this id")
    if len(found) > 1:
        raise UnknownExposure(text, "several exposures start with this; give more characters")
    return found[0]


@main.group("exposures", invoke_without_command=True)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--action", type=click.Choice(["force_reset", "notify", "none"]))
@click.option("--state", type=click.Choice(STATES), help="Only exposures in this state.")
@click.option(
    "--since",
    callback=lambda _ctx, _param, value: None if value is None else _moment(value),
    help="Only exposures first seen at or after this time: ISO 8601 with a UTC offset "
    "(2025-05-12T09:00:00+09:00 or ...Z), as the API's since.",
)
@click.pass_context
@handle_errors
def exposures_group(
    ctx: click.Context,
    output: str,
    action: str | None,
    state: str | None,
    since: datetime | None,
) -> None:
    """List exposures (no plaintext identifiers: masked hints only).

    Subcommands show one exposure with its sightings and events, and resolve or dismiss it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from exposure.store.exposures import iter_exposures

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            rows = [
                row async for row in iter_exposures(conn, action=action, state=state, since=since)
            ]
        write_exposures(rows, output, sys.stdout)

    run(go)


def _moment(text: str) -> datetime:
    """``--since`` read as the API reads ``since``: a time without an offset is refused (in
    Tokyo or in UTC? the operator must say)."""
    try:
        return parse_iso(text.strip())
    except NaiveTimestamp:
        raise click.BadParameter(
            "add a UTC offset (Z or +09:00): a bare local time is ambiguous"
        ) from None
    except (ValueError, OverflowError):
        raise click.BadParameter("not an ISO 8601 time such as 2025-05-12T09:00:00+09:00") from None


@exposures_group.command("show")
@click.argument("exposure_id")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@handle_errors
def show(exposure_id: str, output: str) -> None:
    """One exposure: facts, every sighting (by place), webhook events with their delivery
    attempts, and its history. EXPOSURE_ID may be the first 8 characters of the id."""
    from exposure.store import audit as audit_log
    from exposure.store import exposure_detail

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            full_id = await _exposure_id(conn, exposure_id)
            exposure = await exposure_detail.get_exposure(conn, full_id)
            if exposure is None:  # offboarded meanwhile
                raise UnknownExposure(exposure_id, "no exposure has this id")
            places, total = await exposure_detail.sighting_places(conn, full_id)
            events = await exposure_detail.exposure_events(conn, full_id)
            history = await audit_log.for_targets(conn, [full_id, *(e.event_id for e in events)])
        detail = {
            **{k: _plain(v) for k, v in _fields(exposure).items()},
            "sightings": [{k: _plain(v) for k, v in _fields(p).items()} for p in places],
            "sighting_places": total,
            "events": [
                {
                    **{k: _plain(v) for k, v in _fields(e).items() if k != "history"},
                    "attempts": [{k: _plain(v) for k, v in _fields(a).items()} for a in e.history],
                }
                for e in events
            ],
            "history": [entry.as_json() for entry in history],
        }
        if output == "json":
            click.echo(json.dumps(detail, ensure_ascii=False))
        else:
            click.echo(_text(detail))

    run(go)


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _text(d: dict[str, Any]) -> str:
    """The human form of ``exposures show``."""
    lines = [
        f"exposure     {d['exposure_id']}",
        f"customer     {d['customer_id']}   identifier {d['identifier_hint']} "
        f"({d['identifier_kind']}, {d['match_strength']})",
        f"decision     {d['action']} / {d['severity']}   password {d['password_status']}"
        f"{'   leak carried a PIN' if d['has_pin'] else ''}",
        f"state        {d['state']}"
        + (
            f"   {d['resolution']} at {d['resolved_at']} by {d['resolved_by']}"
            if d["resolution"]
            else ""
        ),
        f"leak         {d['leak_type']}   site {d['site_domain'] or '-'}   source {d['source']}",
        f"seen         first {d['first_seen']}   last {d['last_seen']}   "
        f"{d['occurrences']} time(s)",
        f"reason       {d['reason']}",
        f"recommended  {', '.join(d['recommended_actions']) or '-'}",
        "",
        f"sightings ({d['sighting_places']} place(s); first and last seen per place)",
    ]
    for s in d["sightings"]:
        lines.append(
            f"  {s['source']}  {s['file']}:{s['line_no']}  {s['leak_type']}  "
            f"{s['first_seen']} .. {s['last_seen']}  x{s['times']}"
        )
    lines += ["", f"webhook events ({len(d['events'])})"]
    for e in d["events"]:
        lines.append(
            f"  {e['event_id']}  {e['event_type']}  {e['state']}  written {e['created_at']}"
        )
        for a in e["attempts"]:
            status = a["status_code"] if a["status_code"] is not None else "-"
            lines.append(
                f"    #{a['attempt']} {a['attempted_at']}  {a['outcome']}  http {status}"
                f"{'  ' + a['error'] if a['error'] else ''}"
            )
    lines += ["", f"history ({len(d['history'])})"]
    for h in d["history"]:
        reason = f"  reason: {h['detail']['reason']}" if "reason" in h["detail"] else ""
        lines.append(
            f"  {h['at']}  {h['action']}  {h['target']}  by {h['actor']} ({h['channel']}){reason}"
        )
    return "\n".join(lines)


def _resolve(exposure_id: str, resolution_value: str, reason: str | None, by: str | None) -> None:
    from exposure.store.audit import Actor
    from exposure.triage import resolution

    async def go(settings: Settings) -> None:
        actor = Actor.cli()
        async with ready_engine(settings) as engine:
            async with engine.connect() as conn:
                full_id = await _exposure_id(conn, exposure_id)
            request = resolution.ResolutionRequest(
                exposure_id=full_id,
                resolution=resolution_value,
                resolved_by=by or f"cli:{actor.name}",
                reason=reason,
            )
            await report_resolution(
                {"exposure_id": full_id, "resolution": resolution_value},
                resolution.resolve(engine, request, actor),
            )

    run(go)


async def report_resolution(facts: dict[str, str], recording: Awaitable[bool]) -> None:
    """Await a resolution and print its summary (``facts`` + ``recorded``); a different
    resolution recorded before is an error (exit 1), the same one a note on stderr."""
    from exposure.triage.resolution import AlreadyResolved

    try:
        recorded = await recording
    except AlreadyResolved as conflict:
        emit({**facts, "recorded": False})
        click.echo(f"error: {conflict}", err=True)
        sys.exit(1)
    emit({**facts, "recorded": recorded})
    if not recorded:
        click.echo("it was already resolved this way; nothing changed", err=True)


_BY = click.option("--by", help="Who resolved it, as recorded [default: cli:<your user name>].")


@exposures_group.command("resolve")
@click.argument("exposure_id")
@click.option("--reason", help="A note kept in the audit log.")
@_BY
@handle_errors
def resolve(exposure_id: str, reason: str | None, by: str | None) -> None:
    """Record that the customer's password was reset (reset_completed)."""
    _resolve(exposure_id, "reset_completed", reason, by)


@exposures_group.command("dismiss")
@click.argument("exposure_id")
@click.option("--reason", required=True, help="Why no reset is needed (kept in the audit log).")
@_BY
@handle_errors
def dismiss(exposure_id: str, reason: str, by: str | None) -> None:
    """Record that no reset is needed (dismissed), with the reason."""
    _resolve(exposure_id, "dismissed", reason, by)


@main.command("audit")
@click.option(
    "--format", "output", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option("--action", help="Only this kind of change (e.g. exposure.resolved).")
@click.option(
    "--customer",
    help="Only the deletion of this customer id (matched through its keyed reference).",
)
@handle_errors
def audit(output: str, action: str | None, customer: str | None) -> None:
    """Export the audit log, oldest first: who changed what, and when."""
    import csv

    from exposure.domain.fingerprints import customer_reference
    from exposure.report.render import spreadsheet_safe
    from exposure.store import audit as audit_log

    async def go(settings: Settings) -> None:
        target = None
        if customer is not None:
            target = customer_reference(settings.pepper.reveal(), customer)
        where = audit_log.AuditFilter(action=action, target=target)
        writer = csv.writer(sys.stdout, lineterminator="\r\n") if output == "csv" else None
        if writer is not None:
            writer.writerow(audit_log.EXPORT_COLUMNS)
        count = 0
        async with ready_engine(settings) as engine, engine.connect() as conn:
            async for entry in audit_log.oldest_first(conn, where):
                count += 1
                if writer is None:
                    click.echo(json.dumps(entry.as_json(), ensure_ascii=False))
                else:
                    writer.writerow([spreadsheet_safe(cell) for cell in entry.export_row()])
        click.echo(f"{count} audit entr{'y' if count == 1 else 'ies'}", err=True)

    run(go)
