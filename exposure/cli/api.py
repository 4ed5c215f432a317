"""``exposure api`` (serve the HTTP API) and ``exposure tokens`` (API bearer tokens)."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from exposure.api.scopes import Scope
from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.settings import Settings
from exposure.store.audit import Actor


@main.command("api")
@handle_errors
def api_command() -> None:
    """Serve the HTTP API on EXPOSURE_API_LISTEN until SIGINT or SIGTERM."""

    from exposure.api import create_app  # the whole app: only for this command
    from exposure.api.server import listening

    async def go(settings: Settings) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with (
            ready_engine(settings) as engine,
            listening(create_app(settings, engine), settings.api_listen) as (host, port),
        ):
            click.echo(f"serving the HTTP API on http://{host}:{port} (Ctrl-C stops)", err=True)
            await stop.wait()
        click.echo("stopped", err=True)

    run(go)


@main.group("tokens")
def tokens_group() -> None:
    """Bearer tokens for the HTTP API."""


# The command is spelt `enroll` (as the CLI contract has it), the scope `enrol`: each spelling
# is accepted for the other too.
SCOPE_SPELLINGS = {"enroll": Scope.ENROL.value}


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope] + list(SCOPE_SPELLINGS)),
    help="enrol (customers; enroll works too), read (exposures), resolve (resolutions); "
    "repeat for several.",
)
@handle_errors
def tokens_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from exposure.api.auth import issue_token

    scopes = tuple(dict.fromkeys(SCOPE_SPELLINGS.get(scope, scope) for scope in scopes))

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            issued = await issue_token(engine, name, scopes, actor=Actor.cli())
        emit({**issued.record.as_json(), "token": issued.token})
        click.echo(
            "store this token now: it is shown only once (revoke with "
            f"`exposure tokens revoke {issued.record.token_id}`)",
            err=True,
        )

    run(go)


@tokens_group.command("list")
@handle_errors
def tokens_list() -> None:
    """List tokens (ids, names, scopes, dates; never a secret)."""
    from exposure.store import tokens as token_queries

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine, engine.connect() as conn:
            records = await token_queries.list_tokens(conn)
        emit({"tokens": [record.as_json() for record in records]})

    run(go)


@tokens_group.command("revoke")
@click.argument("token_id")
@handle_errors
def tokens_revoke(token_id: str) -> None:
    """Revoke TOKEN_ID; it stops working on its next request, on every API process."""
    from exposure.api.auth import revoke_token

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            outcome = await revoke_token(engine, token_id, actor=Actor.cli())
        if outcome is None:
            emit({"token_id": token_id, "revoked": False})
            click.echo(f"no token {token_id!r}", err=True)
            sys.exit(1)
        emit({"token_id": token_id, "revoked": True, "already_revoked": not outcome})

    run(go)
