"""/dashboard and /reports behind the API's read scope, over real report files."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope
from exposure.report.builder import produce_weekly_report
from exposure.report.weeks import IsoWeek
from exposure.settings import Settings
from tests.integration.test_api_support import (
    add_customer,
    add_exposure,
    api_client,
    bearer,
    error_of,
    make_token,
)

T0 = datetime(2025, 5, 13, 3, 0, tzinfo=UTC)  # Tuesday of 2025-W20 in Asia/Tokyo


async def test_reports_and_dashboard_need_read_and_serve_files(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings, report_dir=tmp_path / "reports", report_lang="en")
    await add_customer(engine, "C1")
    await add_exposure(engine, "C1", first_seen=T0)
    reader, enroller = await make_token(engine, Scope.READ), await make_token(engine, Scope.ENROL)
    async with api_client(settings, engine) as client:
        assert (await client.get("/dashboard")).status == 401
        assert (await client.get("/dashboard", headers=bearer(enroller))).status == 403
        missing = await client.get("/reports/latest", headers=bearer(reader))
        assert (await error_of(missing, 404))["code"] == "no_report"

        await produce_weekly_report(
            engine, settings, week=IsoWeek.parse("2025-W20"), email=False, now=T0.replace(day=20)
        )
        html = await client.get("/reports/2025-W20", headers=bearer(reader))
        assert html.status == 200 and html.content_type == "text/html"
        assert "2025-W20" in await html.text()
        latest = await client.get("/reports/latest?format=json", headers=bearer(reader))
        assert latest.status == 200 and (await latest.json())  # the figures of 2025-W20
        csv = await client.get("/reports/2025-W20?format=csv", headers=bearer(reader))
        assert "C1" in await csv.text()
        assert await error_of(await client.get("/reports/2025-W99", headers=bearer(reader)), 400)
        assert await error_of(await client.get("/reports/2025-W21", headers=bearer(reader)), 404)
        bad = await client.get("/reports/2025-W20?format=pdf", headers=bearer(reader))
        assert (await error_of(bad, 400))["code"] == "bad_format"

        page = await client.get("/dashboard", headers=bearer(reader))
        text = await page.text()
        assert page.status == 200 and "<html" in text.lower()
        # Links the latest report through the API, in the language it was written in.
        assert 'href="/reports/2025-W20?lang=en"' in text
        # Only the English report was written: Japanese is not there, nor a language we lack.
        ja = await client.get("/reports/2025-W20?lang=ja", headers=bearer(reader))
        assert (await error_of(ja, 404))["code"] == "no_report"
        fr = await client.get("/reports/2025-W20?lang=fr", headers=bearer(reader))
        assert (await error_of(fr, 400))["code"] == "bad_lang"
        assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
            f"exposure-report-2025-W20.en.{kind}" for kind in ("csv", "html", "json")
        ]
