"""What the console's pages show, against SQL written here, and what their forms change."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.api.auth import Scope
from exposure.settings import Settings
from exposure.store.access_models import AuditEntry
from exposure.store.models import DeliveryAttempt, Exposure, OutboxEvent
from tests.console import scenario
from tests.console.support import Client, console_client, csrf_of, page_text, sign_in, visible
from tests.integration.test_api_support import make_token

# The cases having an exposure that matches (the worklist's filters on what leaked).
MEMBERS = "SELECT case_id FROM exposures WHERE"
SEVERITY_RANK = "CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END"  # noqa: E501


def listed(page: str) -> list[str]:
    """Case ids in the order the worklist shows them."""
    return re.findall(r'<tr data-case="([^"]+)"', page)


def total_of(page: str) -> int:
    match = re.search(r'data-total="(\d+)"', page)
    assert match is not None
    return int(match.group(1))


async def expected(
    conn: AsyncConnection, where: str = "state = 'open'", **params: Any
) -> list[str]:
    """The worklist's cases by independent SQL: severity, then the longest wait, then id."""
    rows = await conn.execute(
        text(
            f"SELECT case_id FROM cases WHERE {where}"  # noqa: S608
            f" ORDER BY {SEVERITY_RANK} DESC, COALESCE(force_reset_at, opened_at), case_id"
        ),
        params,
    )
    return [r[0] for r in rows]


def ts(conn: AsyncConnection, moment: datetime) -> Any:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else utc


@pytest.fixture
async def signed_in(engine: AsyncEngine, settings: Settings) -> Any:
    now = await scenario.seed(engine)
    token = await make_token(engine, Scope.READ, Scope.RESOLVE, name="yamada")
    async with console_client(settings, engine) as client:
        assert (await sign_in(client, token)).status == 303
        yield client, now


async def test_worklist_is_most_urgent_first_and_paged(
    signed_in: tuple[Client, datetime], engine: AsyncEngine
) -> None:
    client, _ = signed_in
    first = await page_text(client, "/worklist")
    second = await page_text(client, "/worklist?page=2")
    async with engine.connect() as conn:
        want = await expected(conn)
    assert total_of(first) == len(want) == 5 + scenario.BULK  # open rows only by default
    assert listed(first) + listed(second) == want
    assert len(listed(first)) == 50
    assert listed(first)[:3] == [
        scenario.case_id("C-1001"),  # critical
        scenario.case_id("C-1003"),  # high, waiting 50 h
        scenario.case_id("C-1002"),  # high, waiting 5 h
    ]
    # The SLA clock: breached by 6 h, breached by 26 h, due in 19 h.
    rows = re.findall(r"<tr data-case=.*?</tr>", first, re.S)
    assert 'data-sla="overdue"' in rows[0] and "SLA breached by 6.0 h" in rows[0]
    assert "SLA breached by 26.0 h" in rows[1] and "SLA due in 19.0 h" in rows[2]
    assert "data-sla" not in rows[3]  # notify: no forced reset waits
    assert 'rel="next"' in first and 'rel="prev"' in second and 'rel="next"' not in second


@pytest.mark.parametrize(
    ("query", "where", "params"),
    [
        ("action=force_reset", "state = 'open' AND action = 'force_reset'", {}),
        ("state=any", "1 = 1", {}),
        ("state=dismissed", "resolution = 'dismissed'", {}),
        ("source=hibp&state=any", f"case_id IN ({MEMBERS} source = 'hibp')", {}),
        (
            "leak_type=stealer_log",
            f"state = 'open' AND case_id IN ({MEMBERS} leak_type = 'stealer_log')",
            {},
        ),
        # A site matches itself and its subdomains, never a look-alike.
        (
            "site=mirai-sec.co.jp",
            f"state = 'open' AND case_id IN ({MEMBERS} site_domain LIKE '%mirai-sec.co.jp')",
            {},
        ),
        ("customer=C-10&state=any", "customer_id LIKE 'C-10%'", {}),
        ("sort=newest&action=notify", "state = 'open' AND action = 'notify'", {}),
    ],
)
async def test_worklist_filters_match_sql(
    signed_in: tuple[Client, datetime], engine: AsyncEngine, query: str, where: str, params: Any
) -> None:
    client, _ = signed_in
    page = await page_text(client, f"/worklist?{query}")
    async with engine.connect() as conn:
        want = await expected(conn, where, **params)
        if "sort=newest" in query:
            rows = await conn.execute(
                text(f"SELECT case_id FROM cases WHERE {where}"  # noqa: S608
                     " ORDER BY opened_at DESC, case_id")
            )  # fmt: skip
            want = [r[0] for r in rows]
    assert total_of(page) == len(want)
    assert listed(page) == want[:50]


async def test_worklist_dates_are_local_days_and_bad_values_are_named(
    signed_in: tuple[Client, datetime], engine: AsyncEngine, settings: Settings
) -> None:
    client, now = signed_in
    today = now.astimezone(settings.timezone).date()
    since = today - timedelta(days=2)
    page = await page_text(client, f"/worklist?state=any&since={since}&until={today}")
    start = datetime.combine(since, datetime.min.time(), tzinfo=settings.timezone)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=settings.timezone)
    async with engine.connect() as conn:
        want = await expected(
            conn, "opened_at >= :s AND opened_at < :e", s=ts(conn, start), e=ts(conn, end)
        )
    assert want and listed(page) == want
    odd = await page_text(client, "/worklist?action=explode&since=2025-13-40&site=a%20b")
    assert "Ignored values that could not be read: action, since, site." in visible(odd)
    assert total_of(odd) == 5 + scenario.BULK  # the rest of the filter still applies


async def test_exposure_page_shows_everything_known(
    signed_in: tuple[Client, datetime], engine: AsyncEngine
) -> None:
    client, _ = signed_in
    exposure = scenario.exposure_id("overdue")
    page = await page_text(client, f"/exposures/{exposure}")
    shown = visible(page)
    assert "Customer C-1001" in shown and "ta***@example.jp" in shown and "+81*******78" in shown
    # Sightings by place: the same line seen twice is one row with its first and last time.
    places = re.findall(r"<tr><td>darkweb-feed</td>.*?</tr>", page, re.S)
    assert len(places) == 2
    assert "combo-2025-05.txt" in places[0] and "1,042" in places[0] and ">2</td>" in places[0]
    # The webhook event and every attempt, with the replay button for a dead event.
    assert 'data-event="msg_overdue_0" data-event-state="dead"' in page
    async with engine.connect() as conn:
        attempts = (
            await conn.execute(
                select(DeliveryAttempt.attempt, DeliveryAttempt.status_code)
                .join(OutboxEvent, OutboxEvent.id == DeliveryAttempt.outbox_id)
                .where(OutboxEvent.event_id == "msg_overdue_0")
                .order_by(DeliveryAttempt.id)
            )
        ).all()
    event = page[page.index('data-event="msg_overdue_0"') :]
    for attempt, status in attempts:
        assert f'<td class="num">{attempt}</td>' in event and f">{status}</td>" in event
    assert 'action="/events/msg_overdue_0/replay"' in page
    assert await page_text(client, "/exposures/00000000-0000-4000-8000-000000000000", 404)
    assert "No such exposure" in await page_text(client, "/exposures/x", 404)


async def _form(client: Client, path: str) -> str:
    return csrf_of(await page_text(client, path))


async def test_resolve_dismiss_and_replay_from_the_console(
    signed_in: tuple[Client, datetime], engine: AsyncEngine
) -> None:
    client, _ = signed_in
    cookie = scenario.exposure_id("cookie")
    path = f"/exposures/{cookie}"
    # Dismissing needs a reason: the form comes back with the message and what was typed.
    missing = await client.post(
        f"{path}/resolve",
        data={"csrf_token": await _form(client, path), "resolution": "dismissed", "reason": " "},
    )
    assert missing.status == 400
    assert "Say why the exposure is dismissed" in visible(await missing.text())
    dismissed = await client.post(
        f"{path}/resolve",
        data={
            "csrf_token": await _form(client, path),
            "resolution": "dismissed",
            "reason": "Our own test account\nconfirmed with the branch",
        },
        allow_redirects=False,
    )
    assert dismissed.status == 303 and dismissed.headers["Location"] == f"{path}?done=resolved"
    after = await page_text(client, dismissed.headers["Location"])
    assert "The resolution was recorded." in after
    assert "Our own test account\nconfirmed with the branch</blockquote>" in after
    # Once only: a different resolution is refused, nothing changes.
    again = await client.post(
        f"{path}/resolve",
        data={"csrf_token": await _form(client, path), "resolution": "reset_completed"},
        allow_redirects=False,
    )
    assert again.headers["Location"] == f"{path}?problem=already_resolved"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(Exposure.state, Exposure.resolution, Exposure.resolved_by).where(
                    Exposure.exposure_id == cookie
                )
            )
        ).one()
        assert tuple(row) == ("dismissed", "dismissed", "console:yamada")

    overdue = f"/exposures/{scenario.exposure_id('overdue')}"
    replayed = await client.post(
        "/events/msg_overdue_0/replay",
        data={"csrf_token": await _form(client, overdue), "back": overdue},
        allow_redirects=False,
    )
    assert replayed.headers["Location"] == f"{overdue}?done=replayed"
    # Only a dead event is replayed here: a delivered one is left alone.
    delivered = await client.post(
        "/events/msg_due_0/replay",
        data={"csrf_token": await _form(client, overdue), "back": overdue},
        allow_redirects=False,
    )
    assert delivered.headers["Location"] == f"{overdue}?problem=not_dead"
    async with engine.connect() as conn:
        states = dict((await conn.execute(select(OutboxEvent.event_id, OutboxEvent.state))).all())
        audit = (
            await conn.execute(
                select(AuditEntry.channel, AuditEntry.actor, AuditEntry.action, AuditEntry.target,
                       AuditEntry.detail)
                .where(AuditEntry.action.in_(["exposure.resolved", "event.replayed"]))
                .order_by(AuditEntry.id)
            )
        ).all()  # fmt: skip
    assert states["msg_overdue_0"] == "pending" and states["msg_due_0"] == "delivered"
    assert [tuple(a[:4]) for a in audit] == [
        ("console", "yamada", "exposure.resolved", cookie),
        ("console", "yamada", "event.replayed", "msg_overdue_0"),
    ]
    assert json.loads(audit[0][4])["reason"].startswith("Our own test account")
    history = await page_text(client, overdue)
    assert 'data-audit="event.replayed"' in history


async def test_health_page(signed_in: tuple[Client, datetime], engine: AsyncEngine) -> None:
    client, _ = signed_in
    page = await page_text(client, "/health")
    shown = visible(page)
    hibp = re.search(r'data-connector="hibp">.*?</tr>', page, re.S)
    assert hibp is not None
    assert "HTTP 503 from https://haveibeenpwned.com/api/v3 (retry later)" in hibp.group(0)
    assert "40 records" in hibp.group(0)  # its last success, a day before
    async with engine.connect() as conn:
        states = dict(
            (await conn.execute(text("SELECT state, COUNT(*) FROM outbox GROUP BY state"))).all()
        )
    for state, count in states.items():
        row = re.search(rf'data-outbox-state="{state}">.*?class="num[^"]*">([^<]*)<', page, re.S)
        assert row is not None and row.group(1) == str(count), state
    assert 'data-event="msg_overdue_0"' in page  # the dead event, with its replay form
    assert re.search(r'data-reason="no_delimiter">no delimiter 700<', page)
    assert "logs/victim-pc-17.zip" in shown and "Running" in shown


async def test_dashboard_figures_match_sql(
    signed_in: tuple[Client, datetime], engine: AsyncEngine
) -> None:
    client, now = signed_in
    await scenario.add_joined_exposure(engine, now)  # C-1001's case now covers two exposures
    page = await page_text(client, "/dashboard")
    async with engine.connect() as conn:
        open_rows = dict(
            (
                await conn.execute(
                    text("SELECT action, COUNT(*) FROM exposures WHERE state = 'open'"
                         " GROUP BY action")
                )
            ).all()
        )  # fmt: skip
        open_cases = dict(
            (
                await conn.execute(
                    text("SELECT action, COUNT(*) FROM cases WHERE state = 'open'"
                         " GROUP BY action")
                )
            ).all()
        )  # fmt: skip
        # Overdue: open forced-reset cases asked for more than 24 h ago, one per customer.
        overdue = (
            await conn.execute(
                text(
                    "SELECT COUNT(*) FROM cases WHERE state = 'open'"
                    " AND action = 'force_reset' AND force_reset_at < :cutoff"
                ),
                {"cutoff": ts(conn, now - timedelta(hours=24))},
            )
        ).scalar_one()
    for action, count in open_rows.items():
        card = re.search(rf'data-open-action="{action}">.*?class="value">([^<]*)<', page, re.S)
        assert card is not None and card.group(1) == str(count), action
    # Customers to reset and to notify (open cases) beside the open exposures: the scenario's
    # C-1001 has two open force_reset exposures in one case, so the figures differ.
    labels = {"force_reset": "Customers to reset", "notify": "Customers to notify"}
    for action, label in labels.items():
        card = re.search(
            rf'data-open-cases="{action}">.*?class="label">([^<]*)<.*?class="value">([^<]*)<',
            page,
            re.S,
        )
        assert card is not None and card.groups() == (label, str(open_cases.get(action, 0)))
    assert open_cases["force_reset"] < open_rows["force_reset"]
    card = re.search(r'data-figure="sla_breaches_now">.*?class="value">([^<]*)<', page, re.S)
    assert card is not None and card.group(1) == str(overdue) == "2"
    assert 'href="/worklist?action=force_reset"' in page
    assert '<meta http-equiv="refresh" content="60">' in page


async def test_audit_page_and_exports(
    signed_in: tuple[Client, datetime], engine: AsyncEngine
) -> None:
    client, _ = signed_in
    path = f"/exposures/{scenario.exposure_id('due')}"
    await client.post(
        f"{path}/resolve",
        data={"csrf_token": await _form(client, path), "resolution": "reset_completed"},
    )
    page = await page_text(client, "/audit")
    async with engine.connect() as conn:
        entries = (
            await conn.execute(
                select(AuditEntry.id, AuditEntry.action).order_by(AuditEntry.id.desc())
            )
        ).all()
    assert [int(i) for i in re.findall(r'data-audit-id="(\d+)"', page)] == [e[0] for e in entries]
    assert [e[1] for e in entries] == ["exposure.resolved", "session.signed_in", "token.created"]
    assert "Resolved an exposure" in visible(page) and "Reset completed" in visible(page)
    only = await page_text(client, "/audit?action=exposure.resolved&channel=console")
    assert re.findall(r'data-audit="([^"]+)"', only) == ["exposure.resolved"]
    exported = await client.get("/audit/export?format=csv")
    assert exported.status == 200 and "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await exported.text())))
    assert [r["action"] for r in rows] == [
        "token.created",
        "session.signed_in",
        "exposure.resolved",
    ]
    assert rows[2]["actor"] == "yamada" and rows[2]["channel"] == "console"
    assert json.loads(rows[2]["detail"])["resolved_by"] == "console:yamada"
    lines = await (await client.get("/audit/export?format=jsonl&action=token.created")).text()
    assert [json.loads(line)["action"] for line in lines.splitlines()] == ["token.created"]


async def test_every_page_in_both_languages(
    signed_in: tuple[Client, datetime], engine: AsyncEngine
) -> None:
    client, _ = signed_in
    paths = ("/dashboard", "/worklist", f"/exposures/{scenario.exposure_id('overdue')}",
             "/reports", "/health", "/audit")  # fmt: skip
    english = {p: await page_text(client, p) for p in paths}
    page = english["/worklist"]
    switched = await client.post(
        "/language",
        data={"csrf_token": csrf_of(page), "lang": "ja", "next": "/worklist?action=notify"},
        allow_redirects=False,
    )
    assert switched.status == 303 and switched.headers["Location"] == "/worklist?action=notify"
    assert "exposure_lang=ja" in switched.headers["Set-Cookie"]
    japanese = {p: await page_text(client, p) for p in paths}
    for p in paths:
        assert '<html lang="en">' in english[p] and '<html lang="ja">' in japanese[p], p
        shown = visible(japanese[p])
        # No untranslated label key, no English navigation left on a Japanese page.
        assert not re.search(r"\b(?:nav|console|worklist|health|audit|filter|sla)\.[a-z_]+", shown)
        assert "Worklist" not in shown and "対応リスト" in shown
    assert "強制リセット" in visible(japanese["/worklist"])
    assert "SLA超過 6.0時間" in visible(japanese["/worklist"])
