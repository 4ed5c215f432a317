"""The console and the weekly report in a real browser (Debian's Chromium, through Playwright):
a security analyst's session from sign-in to sign-out, CSRF and expiry as the browser meets
them, and a screenshot of every page at 1280 px in both languages, each checked for layout
(nothing wider than the window, no chart label cut off) and for a Japanese font."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Page
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import create_app
from exposure.api.auth import Scope
from exposure.clock import utcnow
from exposure.report import IsoWeek, produce_weekly_report
from exposure.settings import Settings
from exposure.store.access_models import AuditEntry, ConsoleSession
from exposure.store.models import Exposure
from tests.console import scenario
from tests.console.browser import (
    WIDTH,
    assert_japanese_font,
    assert_laid_out,
    chromium,
    screenshot,
)
from tests.integration.test_api_support import live_server, make_token
from tests.integration.test_report_figures import WEEK, jst
from tests.integration.test_report_figures import seed as seed_report_week

PAGES = {
    "dashboard": "/dashboard",
    "worklist": "/worklist",
    "case": f"/cases/{scenario.case_id('C-1001')}",
    "exposure": f"/exposures/{scenario.exposure_id('overdue')}",
    "reports": "/reports",
    "health": "/health",
    "audit": "/audit",
}


async def _submit(page: Page, selector: str) -> None:
    async with page.expect_navigation():
        await page.click(selector)


async def test_an_analysts_session_in_chromium(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    now = await scenario.seed(engine)
    await scenario.add_joined_exposure(engine, now)
    token = await make_token(engine, Scope.READ, Scope.RESOLVE, name="soc-yamada")
    settings = dataclasses.replace(settings, report_dir=tmp_path / "reports")
    current = IsoWeek.containing(utcnow(), settings.timezone)
    for lang in ("ja", "en"):  # the reports page lists both; the dashboard shows the latest
        await produce_weekly_report(engine, settings, week=current, lang=lang, email=False)
    shots = tmp_path / "shots"
    shots.mkdir()
    async with live_server(create_app(settings, engine)) as base, chromium() as browser:
        context = await browser.new_context(
            viewport={"width": WIDTH, "height": 900}, locale="ja-JP"
        )
        page = await context.new_page()

        # An unauthenticated visit lands on the sign-in page, in the browser's language.
        await page.goto(f"{base}/worklist")
        assert page.url.startswith(f"{base}/signin?next=")
        assert await page.text_content("h1") == "コンソールにサインイン"
        await assert_laid_out(page, "signin.ja")
        await assert_japanese_font(page, "h1")
        await screenshot(page, shots, "signin.ja")
        await page.fill("#token", token)
        await _submit(page, "form[action='/signin'] button")
        assert page.url == f"{base}/worklist"  # back to the page it asked for
        assert await page.text_content(".who") == "soc-yamada"

        # Filter the worklist: open forced resets, most urgent first.
        await page.select_option("#f-action", "force_reset")
        await _submit(page, "form.filters button[type=submit]")
        assert "action=force_reset" in page.url
        rows = await page.locator("tr[data-case]").evaluate_all(
            "rows => rows.map(r => r.dataset.customer)"
        )
        assert rows == ["C-1001", "C-1003", "C-1002"]
        await screenshot(page, shots, "worklist-filtered.ja")

        # Open a case, then its exposure, and resolve it (dismissed, with a reason).
        await _submit(page, "tr[data-customer='C-1003'] a")
        assert page.url.endswith(f"/cases/{scenario.case_id('C-1003')}")
        await _submit(page, f"tr[data-exposure='{scenario.exposure_id('cookie')}'] a")
        assert page.url.endswith(f"/exposures/{scenario.exposure_id('cookie')}")
        await page.check("input[name=resolution][value=dismissed]")
        await page.fill("#reason", "支店に確認済みのテスト口座")
        await _submit(page, "form.resolve-form button[type=submit]")
        assert page.url.endswith("?done=resolved")
        assert await page.is_visible("[data-flash=resolved]")
        assert "支店に確認済みのテスト口座" in (await page.text_content("ol.history")) or ""
        await screenshot(page, shots, "exposure-resolved.ja")

        # The audit log shows who did it.
        await page.goto(f"{base}/audit")
        first = page.locator("tr[data-audit]").first
        assert await first.get_attribute("data-audit") == "exposure.resolved"
        assert "soc-yamada" in (await first.text_content() or "")
        async with engine.connect() as conn:
            actor = (
                await conn.execute(
                    select(AuditEntry.actor, AuditEntry.channel).where(
                        AuditEntry.action == "exposure.resolved"
                    )
                )
            ).one()
            state = (
                await conn.execute(
                    select(Exposure.state).where(
                        Exposure.exposure_id == scenario.exposure_id("cookie")
                    )
                )
            ).scalar_one()
        assert tuple(actor) == ("soc-yamada", "console") and state == "dismissed"

        # Every page in Japanese, then switch the language and every page in English.
        for lang, heading in (("ja", "監査ログ"), ("en", "Audit log")):
            if lang == "en":
                await _submit(page, "[data-switch-language]")
                assert (
                    page.url == f"{base}/audit" and await page.get_attribute("html", "lang") == "en"
                )
            assert await page.text_content("h1") == heading
            for name, path in PAGES.items():
                await page.goto(base + path)
                assert await page.get_attribute("html", "lang") == lang
                await assert_laid_out(page, f"{name}.{lang}")
                if lang == "ja":
                    await assert_japanese_font(page, "h1")
                    await assert_japanese_font(page, "nav.primary a")
                await screenshot(page, shots, f"{name}.{lang}")
        # The chart's labels, in Japanese too: 強制リセット whole, inside the chart.
        await _submit(page, "[data-switch-language]")
        await page.goto(f"{base}/dashboard")
        labels = await page.locator("svg.pygal-chart text").all_text_contents()
        assert "強制リセット" in labels
        await assert_laid_out(page, "dashboard chart")

        # A form stripped of its CSRF token is refused, and nothing changes.
        await page.goto(f"{base}/exposures/{scenario.exposure_id('due')}")
        await page.evaluate(
            "document.querySelector('form.resolve-form input[name=csrf_token]').remove()"
        )
        async with page.expect_navigation() as navigation:
            await page.click("form.resolve-form button[type=submit]")
        refused = await navigation.value
        assert refused is not None and refused.status == 403
        assert await page.get_attribute("[data-refusal]", "data-refusal") == "refusal.csrf"
        await assert_laid_out(page, "refusal.ja")
        await screenshot(page, shots, "refusal.ja")
        async with engine.connect() as conn:
            due = (
                await conn.execute(
                    select(Exposure.state).where(
                        Exposure.exposure_id == scenario.exposure_id("due")
                    )
                )
            ).scalar_one()
        assert due == "open"

        # Sign out: back to the sign-in page, and the session is gone.
        await page.goto(f"{base}/dashboard")
        await _submit(page, "[data-sign-out]")
        assert page.url == f"{base}/signin?signed_out=1"
        assert await page.is_visible("[data-flash=signed_out]")
        await page.goto(f"{base}/dashboard")
        assert page.url.startswith(f"{base}/signin?next=")

        # An expired session returns to sign-in, saying why.
        await page.fill("#token", token)
        await _submit(page, "form[action='/signin'] button")
        assert page.url == f"{base}/dashboard"
        async with engine.begin() as conn:
            await conn.execute(
                update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(hours=1))
            )
        await page.goto(f"{base}/health")
        assert page.url.startswith(f"{base}/signin?next=%2Fhealth&ended=1")
        assert await page.is_visible("[data-flash=ended]")
        await screenshot(page, shots, "signin-ended.ja")
        await context.close()

        english = await browser.new_page(viewport={"width": WIDTH, "height": 900}, locale="en-US")
        await english.goto(f"{base}/dashboard")
        assert await english.text_content("h1") == "Sign in to the console"
        await assert_laid_out(english, "signin.en")
        await screenshot(english, shots, "signin.en")


async def test_the_weekly_report_in_chromium(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    """The report file as management opens it, in both languages: laid out within 1280 px,
    every chart label whole (強制リセット was cut to 制リセット), Japanese in a Japanese font."""
    await seed_report_week(engine)
    out = tmp_path / "reports"
    settings = dataclasses.replace(settings, report_dir=out)
    paths = {}
    for lang in ("ja", "en"):
        run = await produce_weekly_report(
            engine, settings, week=WEEK, lang=lang, email=False, now=jst(19, 8)
        )
        paths[lang] = run.paths[0]
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": WIDTH, "height": 900})
        for lang, path in paths.items():
            await page.goto(path.as_uri())
            await assert_laid_out(page, f"report.{lang}")
            labels = await page.locator("svg.pygal-chart text").all_text_contents()
            if lang == "ja":
                assert "強制リセット" in labels and "有効（現在のパスワード）" in labels
                await assert_japanese_font(page, "h1")
                await assert_japanese_font(page, "svg.pygal-chart text")
            else:
                assert "Forced reset" in labels and "Unknown (no hash enrolled)" in labels
            card = page.locator("[data-figure=new_exposures] .value")
            assert await card.text_content() == ("12件" if lang == "ja" else "12")
            await screenshot(page, tmp_path, f"report.{lang}")
