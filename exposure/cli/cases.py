"""``exposure cases`` (list, show, resolve): the customer incidents a reset service acts on.

The same queries as ``GET /v1/cases`` and the console's worklist, and the same resolution
service as ``POST /v1/cases/{case_id}/resolution``, recorded in the audit log as the
operating-system user (channel ``cli``).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import click
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure import JsonObject, JsonValue
from exposure.cli.app import handle_errors, main, ready_engine, run
from exposure.cli.exposures import _moment, report_resolution
from exposure.cli.render import fit
from exposure.clock import iso_utc
from exposure.errors import FatalError
from exposure.settings import Settings

if TYPE_CHECKING:
    from exposure.store.case_queries import CaseEvent, CaseExposure, CaseSummary

_ID_PREFIX = re.compile(r"[0-9a-f-]{8,36}")
# (field, heading, width): the id is its first 8 characters, which `cases show` accepts.
CASE_COLUMNS = (
    ("case_id", "case", 8),
    ("customer_id", "customer", 14),
    ("action", "action", 11),
    ("severity", "severity", 8),
    ("exposure_count", "exposures", 9),
    ("state", "state", 8),
    ("resolution", "resolution", 15),
    ("opened_at", "opened (UTC)", 16),
    ("force_reset_at", "reset asked (UTC)", 17),
)


class UnknownCase(FatalError):
    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"case {text!r}: {problem}")


async def _case_id(conn: AsyncConnection, text: str) -> str:
    """A full case id, or the unique case whose id starts with ``text``."""
    from exposure.store.case_queries import find_by_prefix

    text = text.strip().lower()
    if not _ID_PREFIX.fullmatch(text):
        raise UnknownCase(text, "give a case id, or at least its first 8 characters")
    found = await find_by_prefix(conn, text)
    if not found:
        raise UnknownCase(text, "no case has this id")
    if len(found) > 1:
        raise UnknownCase(text, "several cases start with this; give more characters")
    return found[0]


def _plain(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value


def _fields(value: CaseSummary | CaseExposure | CaseEvent) -> JsonObject:
    """A case (or one of its exposures or events) as JSON: its fields in order, times as
    ISO 8601 UTC."""
    return {f.name: _json_value(getattr(value, f.name)) for f in fields(value)}


def _json_value(value: object) -> JsonValue:
    plain = _plain(value)
    if plain is None or isinstance(plain, str | int | float):
        return plain
    raise TypeError(f"a case field of type {type(value).__name__} has no JSON form")


def _table_cell(value: Any, name: str) -> str:
    if value is None:
        return "-" if name in ("resolution", "force_reset_at") else ""
    if name == "case_id":
        return str(value)[:8]
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return str(value)


def write_cases(rows: list[Any], output: str, stream: TextIO) -> None:
    if output == "jsonl":
        for row in rows:
            stream.write(json.dumps(_fields(row), ensure_ascii=False) + "\n")
    elif output == "csv":
        from exposure.report.render import spreadsheet_safe

        names = [f for f in rows[0].__dataclass_fields__] if rows else ["case_id"]
        writer = csv.writer(stream)
        writer.writerow(names)
        for row in rows:
            # Customer ids come from outside and the file is opened in a spreadsheet.
            cells = (_plain(getattr(row, name)) for name in names)
            writer.writerow([spreadsheet_safe("" if v is None else str(v)) for v in cells])
    else:
        line = " ".join(fit(heading, width) for _, heading, width in CASE_COLUMNS)
        stream.write(line.rstrip() + "\n")
        for row in rows:
            cells = (
                fit(_table_cell(getattr(row, name), name), width) for name, _, width in CASE_COLUMNS
            )
            stream.write(" ".join(cells).rstrip() + "\n")
        click.echo(f"{len(rows)} case(s)", err=True)


@main.group("cases", invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(["open", "resolved", "all"]),
    default="open",
    show_default=True,
)
@click.option("--action", type=click.Choice(["force_reset", "notify", "none"]))
@click.option(
    "--since",
    callback=lambda _ctx, _param, value: None if value is None else _moment(value),
    help="Only cases opened at or after this time: ISO 8601 with a UTC offset "
    "(2025-05-12T09:00:00+09:00 or ...Z), as the API's since.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
)
@click.pass_context
@handle_errors
def cases_group(
    ctx: click.Context, state: str, action: str | None, since: datetime | None, output: str
) -> None:
    """List cases: one per customer incident, with the highest action of its exposures.

    Subcommands show one case with its exposures and events, and resolve it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from exposure.store.case_queries import CaseFilter, iter_cases

    where = CaseFilter(state=None if state == "all" else state, action=action, since=since)

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            rows = [row async for row in iter_cases(conn, where)]
        write_cases(rows, output, sys.stdout)

    run(go)


@cases_group.command("show")
@click.argument("case_id")
@handle_errors
def show(case_id: str) -> None:
    """One case as JSON: its facts, its exposures (with their sightings counts) and the
    webhook events that announced it. CASE_ID may be the first 8 characters of the id."""
    from exposure.store import case_queries

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            full_id = await _case_id(conn, case_id)
            detail = await case_queries.case_detail(conn, full_id)
        if detail is None:  # offboarded meanwhile
            raise UnknownCase(case_id, "no case has this id")
        body = _fields(detail.case)
        body["exposures"] = [_fields(e) for e in detail.exposures]
        body["exposures_truncated"] = detail.exposures_total > len(detail.exposures)
        body["events"] = [_fields(e) for e in detail.events]
        click.echo(json.dumps(body, ensure_ascii=False))

    run(go)


@cases_group.command("resolve")
@click.argument("case_id")
@click.option(
    "--resolution",
    "resolution_value",
    type=click.Choice(["reset_completed", "dismissed"]),
    required=True,
    help="reset_completed: the customer's password was reset; dismissed: no reset is needed.",
)
@click.option("--reason", help="Why (kept in the audit log; required to dismiss).")
@click.option("--by", help="Who resolved it, as recorded [default: cli:<your user name>].")
@handle_errors
def resolve(case_id: str, resolution_value: str, reason: str | None, by: str | None) -> None:
    """End a case and every open exposure of it. Recorded once: the same resolution again
    changes nothing; a different one is refused (exit 1)."""
    from exposure.store.audit import Actor
    from exposure.triage import resolution

    async def go(settings: Settings) -> None:
        actor = Actor.cli()
        async with ready_engine(settings) as engine:
            async with engine.connect() as conn:
                full_id = await _case_id(conn, case_id)
            request = resolution.CaseResolutionRequest(
                case_id=full_id,
                resolution=resolution_value,
                resolved_by=by or f"cli:{actor.name}",
                reason=reason,
            )
            await report_resolution(
                {"case_id": full_id, "resolution": resolution_value},
                resolution.resolve_case(engine, request, actor),
            )

    run(go)
