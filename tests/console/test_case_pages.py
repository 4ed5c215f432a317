"""The console's case page: what it shows, its links into exposures, and its resolve form
(CSRF, a reason to dismiss, once only, every exposure of the case, an audit entry)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope
from exposure.settings import Settings
from exposure.store.access_models import AuditEntry
from exposure.store.models import Case, Exposure
from tests.console import scenario
from tests.console.support import Client, console_client, csrf_of, page_text, sign_in, visible
from tests.integration.test_api_support import make_token


@pytest.fixture
async def signed_in(engine: AsyncEngine, settings: Settings) -> Any:
    now = await scenario.seed(engine)
    joined = await scenario.add_joined_exposure(engine, now)
    token = await make_token(engine, Scope.READ, Scope.RESOLVE, name="yamada")
    async with console_client(settings, engine) as client:
        assert (await sign_in(client, token)).status == 303
        yield client, joined


async def test_case_page_shows_its_exposures_and_events(
    signed_in: tuple[Client, str],
) -> None:
    client, joined = signed_in
    case_id = scenario.case_id("C-1001")
    worklist = await page_text(client, "/worklist")
    row = re.search(rf'<tr data-case="{case_id}".*?</tr>', worklist, re.S)
    assert row is not None
    assert f'href="/cases/{case_id}"' in row.group(0) and 'data-exposures="2"' in row.group(0)

    page = await page_text(client, f"/cases/{case_id}")
    shown = visible(page)
    assert "Customer C-1001" in shown and "SLA breached by 6.0 h" in shown
    assert re.findall(r'<tr data-exposure="([^"]+)"', page) == [
        scenario.exposure_id("overdue"),
        joined,
    ]
    assert f'href="/exposures/{joined}"' in page and "KL****01" in shown
    assert re.findall(r'data-event="([^"]+)" data-event-state="([^"]+)"', page) == [
        ("msg_overdue_0", "dead")
    ]
    assert 'name="csrf_token"' in page and f'action="/cases/{case_id}/resolve"' in page

    await page_text(client, "/cases/00000000-0000-4000-8000-000000000000", status=404)
    await page_text(client, "/cases/not-a-case", status=404)


async def test_resolve_a_case_from_the_console(
    signed_in: tuple[Client, str], engine: AsyncEngine
) -> None:
    client, joined = signed_in
    case_id = scenario.case_id("C-1001")
    path = f"/cases/{case_id}"
    # No CSRF token: refused before anything is read.
    forged = await client.post(f"{path}/resolve", data={"resolution": "reset_completed"})
    assert forged.status == 403
    # Dismissing needs a reason: the form comes back with the message.
    missing = await client.post(
        f"{path}/resolve",
        data={
            "csrf_token": csrf_of(await page_text(client, path)),
            "resolution": "dismissed",
            "reason": "",
        },
    )
    assert missing.status == 400 and 'data-flash="form_error"' in await missing.text()
    done = await client.post(
        f"{path}/resolve",
        data={
            "csrf_token": csrf_of(await page_text(client, path)),
            "resolution": "reset_completed",
            "reason": "branch confirmed the reset",
        },
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == f"{path}?done=resolved"
    after = await page_text(client, done.headers["Location"])
    assert 'data-resolution="reset_completed"' in after and 'data-flash="resolved"' in after
    again = await client.post(
        f"{path}/resolve",
        data={
            "csrf_token": csrf_of(await page_text(client, path)),
            "resolution": "dismissed",
            "reason": "changed my mind",
        },
        allow_redirects=False,
    )
    assert again.headers["Location"] == f"{path}?problem=already_resolved"

    async with engine.connect() as conn:
        case = (
            await conn.execute(
                select(Case.state, Case.resolution, Case.resolved_by).where(Case.case_id == case_id)
            )
        ).one()
        states = dict(
            (
                await conn.execute(
                    select(Exposure.exposure_id, Exposure.state).where(Exposure.case_id == case_id)
                )
            ).all()
        )
        audit = (
            await conn.execute(
                select(AuditEntry.channel, AuditEntry.actor, AuditEntry.target).where(
                    AuditEntry.action == "case.resolved"
                )
            )
        ).all()
    assert tuple(case) == ("resolved", "reset_completed", "console:yamada")
    assert states == {
        scenario.exposure_id("overdue"): "reset_completed",
        joined: "reset_completed",
    }
    assert [tuple(a) for a in audit] == [("console", "yamada", case_id)]
    # The resolved case leaves the default (open) worklist and shows under its resolution.
    assert case_id not in await page_text(client, "/worklist")
    resolved = await page_text(client, "/worklist?state=reset_completed")
    assert f'data-case="{case_id}"' in resolved


async def test_reader_sees_no_form(engine: AsyncEngine, settings: Settings) -> None:
    await scenario.seed(engine)
    reader = await make_token(engine, Scope.READ, name="reader")
    async with console_client(settings, engine) as client:
        assert (await sign_in(client, reader)).status == 303
        page = await page_text(client, f"/cases/{scenario.case_id('C-1002')}")
        assert "/resolve" not in page and "lacks the resolve scope" in visible(page)
