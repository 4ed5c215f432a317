"""The report and the dashboard as a real browser shows them (headless Chromium, offline)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.report import build_report, render_dashboard, write_report
from exposure.settings import Settings
from tests.integration.test_report_figures import WEEK, jst, seed

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed at /usr/bin/chromium (.ci/run installs it)",
)


async def chromium(url: str, profile: Path, *extra: str) -> str:
    """Run headless Chromium with networking extras off; return what it printed."""
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *extra,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0
    return stdout.decode("utf-8")


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(style|svg)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


async def test_report_and_dashboard_render_in_chromium(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    await seed(engine)
    out = tmp_path / "reports"
    settings = dataclasses.replace(settings, report_dir=out)
    [html_path, _, _] = write_report(
        await build_report(engine, settings, WEEK, "en", now=jst(19, 8)), out
    )
    dashboard_path = out / "dashboard.html"
    dashboard_path.write_text(
        await render_dashboard(engine, settings, lang="en", now=jst(19, 8)), "utf-8"
    )

    dom = await chromium(html_path.as_uri(), tmp_path / "profile", "--dump-dom")
    text = visible_text(dom)
    assert len(text) > 2000, "the page rendered (nearly) blank"
    assert "Weekly leaked-credential exposure report" in text
    assert "Mon 12 May 2025 – Sun 18 May 2025" in text
    card = re.search(r'data-figure="new_exposures">.*?class="value">([^<]*)<', dom, re.S)
    assert card is not None and card.group(1) == "12"
    assert "67.6 h" in text and "10.0 h" in text  # p90 and median time to reset
    assert "C-w19-open" in text  # the SLA list
    assert len(re.findall(r"<svg\b", dom)) == 4
    assert re.search(r"<rect\b[^>]*class=\"rect reactive", dom), "the charts drew no bars"

    board = visible_text(await chromium(dashboard_path.as_uri(), tmp_path / "p2", "--dump-dom"))
    assert "Exposure monitor dashboard" in board
    assert "Open the full report" in board and "2025-W20" in board
    assert "Dead-lettered" in board

    shot = tmp_path / "report.png"
    await chromium(
        html_path.as_uri(), tmp_path / "p3", f"--screenshot={shot}", "--window-size=1200,2000"
    )
    assert shot.stat().st_size > 50_000  # a white page compresses to a few KiB
