"""Signing in to the console, its session cookie and its limits, CSRF, and the headers every
page sends, over real HTTP on both backends."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope, revoke_token
from exposure.clock import utcnow
from exposure.settings import Settings
from exposure.store.access_models import AuditEntry, ConsoleSession
from exposure.store.models import Exposure
from tests.console.support import (
    HTML,
    console_client,
    csrf_of,
    page_text,
    session_cookie,
    sign_in,
)
from tests.integration.test_api_support import (
    T0,
    TEST_ACTOR,
    add_customer,
    add_exposure,
    bearer,
    error_of,
    make_token,
)

PAGES = ("/dashboard", "/worklist", "/reports", "/health", "/audit")


async def _sessions(engine: AsyncEngine) -> list[bytes]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ConsoleSession.session_hash))
        return [bytes(r[0]) for r in rows]


async def _audit(engine: AsyncEngine) -> list[tuple[str, str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                AuditEntry.channel, AuditEntry.actor, AuditEntry.action, AuditEntry.target
            ).order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]


async def test_sign_in_sets_a_hashed_httponly_session(
    engine: AsyncEngine, settings: Settings
) -> None:
    token = await make_token(engine, Scope.READ, name="yamada")
    async with console_client(settings, engine) as client:
        # An unauthenticated visit to any page goes to the sign-in page, keeping the page.
        for path in PAGES:
            response = await client.get(path + "?x=1", headers=HTML, allow_redirects=False)
            assert response.status == 303
            target = urlsplit(response.headers["Location"])
            assert target.path == "/signin" and parse_qs(target.query)["next"] == [path + "?x=1"]
        signed_in = await sign_in(client, token, next_path="/worklist?action=notify")
        assert signed_in.status == 303
        assert signed_in.headers["Location"] == "/worklist?action=notify"
        name, header = session_cookie(signed_in)
        attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
        assert name == "exposure_session"  # plain http: no __Host- prefix, no Secure
        assert {"httponly", "path", "max-age", "samesite"} <= attributes
        assert "secure" not in attributes and "SameSite=Lax" in header
        assert "Max-Age=43200" in header  # EXPOSURE_CONSOLE_SESSION_HOURS
        secret = header.split(";")[0].split("=", 1)[1]
        assert len(secret) >= 43
        # Only the SHA-256 of the cookie's secret is stored.
        assert await _sessions(engine) == [hashlib.sha256(secret.encode()).digest()]
        for path in PAGES:
            await page_text(client, path)
    assert await _audit(engine) == [
        ("cli", "test-suite", "token.created", token.split("_")[1]),
        ("console", "yamada", "session.signed_in", token.split("_")[1]),
    ]


async def test_cookie_is_secure_behind_tls(engine: AsyncEngine, settings: Settings) -> None:
    token = await make_token(engine, Scope.READ)
    async with console_client(
        settings, engine, console_url="https://exposure.example.internal"
    ) as client:
        # A TLS proxy in front: the browser speaks https, so it keeps Secure cookies; this
        # client speaks http to the app and is handed the pre-session cookie explicitly.
        page = await client.get("/signin", headers=HTML)
        presession = page.headers["Set-Cookie"]
        assert presession.startswith("__Host-exposure_presession=") and "Secure" in presession
        signed_in = await client.post(
            "/signin",
            data={"csrf_token": csrf_of(await page.text()), "token": token},
            headers={
                "Cookie": presession.split(";")[0],
                "Origin": "https://exposure.example.internal",
            },
            allow_redirects=False,
        )
        assert signed_in.status == 303
        name, header = session_cookie(signed_in)
        # Another origin is refused even with the right token (the configured one counts).
        again = await client.get("/signin", headers=HTML)
        foreign = await client.post(
            "/signin",
            data={"csrf_token": csrf_of(await again.text()), "token": token},
            headers={
                "Cookie": again.headers["Set-Cookie"].split(";")[0],
                "Origin": "http://exposure.example.internal",
            },
            allow_redirects=False,
        )
        assert foreign.status == 403
    assert name == "__Host-exposure_session"
    assert "Secure" in header and "Path=/" in header and "Domain" not in header


async def test_wrong_or_insufficient_tokens_are_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    enroller = await make_token(engine, Scope.ENROL)
    reader = await make_token(engine, Scope.READ)
    async with console_client(settings, engine) as client:
        wrong = await sign_in(client, reader[:-4] + "AAAA")
        assert wrong.status == 401 and "unknown or revoked" in await wrong.text()
        unknown = await sign_in(client, "exp_0123456789abcdef_" + "A" * 43)
        assert unknown.status == 401
        garbage = await sign_in(client, "<script>alert(1)</script>")
        assert garbage.status == 401 and "<script>alert" not in await garbage.text()
        no_read = await sign_in(client, enroller)
        assert no_read.status == 403 and "read scope" in await no_read.text()
    assert await _sessions(engine) == []


async def test_idle_absolute_and_revoked_sessions_return_to_sign_in(
    engine: AsyncEngine, settings: Settings
) -> None:
    token = await make_token(engine, Scope.READ)
    token_id = token.split("_")[1]
    async with console_client(settings, engine) as client:
        for expire in ("idle", "absolute", "revoked"):
            assert (await sign_in(client, token)).status == 303
            await page_text(client, "/worklist")
            async with engine.begin() as conn:
                if expire == "idle":  # unused for longer than EXPOSURE_CONSOLE_IDLE_MINUTES
                    values = {"last_seen_at": utcnow() - timedelta(minutes=31)}
                    await conn.execute(update(ConsoleSession).values(**values))
                elif expire == "absolute":  # however active, past its absolute limit
                    values = {"expires_at": utcnow() - timedelta(seconds=1)}
                    await conn.execute(update(ConsoleSession).values(**values))
            if expire == "revoked":
                assert await revoke_token(engine, token_id, actor=TEST_ACTOR)
            response = await client.get("/worklist", headers=HTML, allow_redirects=False)
            assert response.status == 303, expire
            target = urlsplit(response.headers["Location"])
            assert target.path == "/signin" and parse_qs(target.query)["ended"] == ["1"]
            assert await _sessions(engine) == [], expire  # the ended session is gone
            ended = await page_text(client, response.headers["Location"])
            assert "Your session ended" in ended
            if expire == "revoked":
                assert (await sign_in(client, token)).status == 401  # and cannot come back


async def test_sign_out_ends_the_session(engine: AsyncEngine, settings: Settings) -> None:
    token = await make_token(engine, Scope.READ, name="sato")
    async with console_client(settings, engine) as client:
        signed_in = await sign_in(client, token)
        cookie = session_cookie(signed_in)[1].split(";")[0]
        page = await page_text(client, "/dashboard")
        out = await client.post(
            "/signout", data={"csrf_token": csrf_of(page)}, allow_redirects=False
        )
        assert out.status == 303 and out.headers["Location"] == "/signin?signed_out=1"
        assert 'exposure_session=""' in out.headers["Set-Cookie"]
        assert await _sessions(engine) == []
        # The old cookie, replayed by hand, opens nothing.
        client.session.cookie_jar.clear()
        stale = await client.get(
            "/dashboard", headers={**HTML, "Cookie": cookie}, allow_redirects=False
        )
        assert stale.status == 303 and stale.headers["Location"].startswith("/signin?")
    assert [a[2] for a in await _audit(engine)][-2:] == ["session.signed_in", "session.signed_out"]


async def test_forms_without_their_csrf_token_are_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_customer(engine, "C1")
    exposure = await add_exposure(engine, "C1", first_seen=T0)
    token = await make_token(engine, Scope.READ, Scope.RESOLVE)
    form = {"resolution": "dismissed", "reason": "a test account"}
    target = f"/exposures/{exposure}/resolve"
    async with console_client(settings, engine) as client:
        await sign_in(client, token)
        good = csrf_of(await page_text(client, f"/exposures/{exposure}"))
        refused = [
            await client.post(target, data=form, allow_redirects=False),
            await client.post(target, data={**form, "csrf_token": ""}, allow_redirects=False),
            await client.post(target, data={**form, "csrf_token": good[:-2] + "xx"}),
            # The right token, from another site: the browser says so.
            await client.post(
                target,
                data={**form, "csrf_token": good},
                headers={"Origin": "https://evil.example"},
            ),
            await client.post(
                target, data={**form, "csrf_token": good}, headers={"Sec-Fetch-Site": "cross-site"}
            ),
        ]
        for response in refused:
            assert response.status == 403
            assert "Form refused" in await response.text()
        async with engine.connect() as conn:
            state = (await conn.execute(select(Exposure.state))).scalar_one()
        assert state == "open"
        # Another session's token does not fit this session.
        async with console_client(settings, engine) as other:
            await sign_in(other, token)
            theirs = csrf_of(await page_text(other, f"/exposures/{exposure}"))
        assert theirs != good
        crossed = await client.post(target, data={**form, "csrf_token": theirs})
        assert crossed.status == 403
        # The sign-in form needs its own token too (bound to the pre-session cookie).
        client.session.cookie_jar.clear()
        blind = await client.post("/signin", data={"token": token}, allow_redirects=False)
        assert blind.status == 403
        # With the right token, from this origin, it goes through.
        await sign_in(client, token)
        good = csrf_of(await page_text(client, f"/exposures/{exposure}"))
        done = await client.post(
            target,
            data={**form, "csrf_token": good},
            headers={"Origin": str(client.make_url("")).rstrip("/")},
            allow_redirects=False,
        )
        assert done.status == 303 and done.headers["Location"].endswith("?done=resolved")


async def test_open_redirects_are_not_followed(engine: AsyncEngine, settings: Settings) -> None:
    token = await make_token(engine, Scope.READ)
    async with console_client(settings, engine) as client:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "worklist"):
            client.session.cookie_jar.clear()
            response = await sign_in(client, token, next_path=target)
            assert response.headers["Location"] == "/dashboard", target


async def test_scripts_keep_their_bearer_tokens(engine: AsyncEngine, settings: Settings) -> None:
    reader = await make_token(engine, Scope.READ)
    async with console_client(settings, engine) as client:
        # No browser: the API's JSON 401 as before, not a redirect.
        assert (await error_of(await client.get("/dashboard"), 401))["code"] == "unauthorized"
        page = await client.get("/dashboard", headers=bearer(reader))
        assert page.status == 200 and "Exposure monitor dashboard" in await page.text()
        worklist = await client.get("/worklist", headers=bearer(reader))
        assert worklist.status == 200
        # A bearer page view holds no form: there is no session to bind one to.
        assert 'name="csrf_token"' not in await worklist.text()
    assert await _sessions(engine) == []


async def test_a_read_only_session_cannot_resolve(engine: AsyncEngine, settings: Settings) -> None:
    await add_customer(engine, "C1")
    exposure = await add_exposure(engine, "C1", first_seen=T0)
    token = await make_token(engine, Scope.READ)
    async with console_client(settings, engine) as client:
        await sign_in(client, token)
        page = await page_text(client, f"/exposures/{exposure}")
        assert "lacks the resolve scope" in page and f"/exposures/{exposure}/resolve" not in page
        response = await client.post(
            f"/exposures/{exposure}/resolve",
            data={"csrf_token": csrf_of(page), "resolution": "reset_completed"},
        )
        assert response.status == 403 and "resolve scope" in await response.text()
    async with engine.connect() as conn:
        assert (await conn.execute(select(Exposure.state))).scalar_one() == "open"
        assert (
            await conn.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "exposure.resolved")
            )
        ).scalar_one() == 0


async def test_every_page_forbids_framing_and_foreign_content(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_customer(engine, "C1")
    exposure = await add_exposure(engine, "C1", first_seen=T0)
    token = await make_token(engine)
    async with console_client(settings, engine) as client:
        responses = [await client.get("/signin", headers=HTML)]
        await sign_in(client, token)
        for path in (*PAGES, f"/exposures/{exposure}", "/exposures/not-a-uuid"):
            responses.append(await client.get(path, headers=HTML))
        responses.append(await client.get("/v1/exposures", headers=bearer(token)))
        responses.append(await client.get("/healthz"))
        for response in responses:
            policy = response.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            if response.content_type == "text/html":
                assert "script-src" not in policy  # no script at all, from anywhere
                assert "form-action 'self'" in policy
                assert response.headers["Cache-Control"] == "no-store"
                text = await response.text()
                assert "<script" not in text and "http://" not in text.replace(
                    'xmlns="http://www.w3.org/2000/svg"', ""
                )
