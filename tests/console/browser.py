"""Driving Debian's Chromium with Playwright for the browser tests (no tests here).

The system browser, never a downloaded one: ``.ci/run`` installs ``chromium`` and
``fonts-noto-cjk``. Tests fail, not skip, when the browser is missing. Each check here looks at
what the browser laid out: nothing wider than the window, chart labels inside their chart,
Japanese text drawn with a Japanese font.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 1280
# Where screenshots are copied for people to look at (set by whoever reviews them).
SCREENSHOT_DIR = "EXPOSURE_TEST_SCREENSHOTS"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    installed = await asyncio.to_thread(CHROMIUM.exists)
    assert installed, "install Chromium (.ci/run does: apt-get install chromium)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, folder: Path, name: str) -> Path:
    """A full-page screenshot at the window's width, kept in ``folder`` and, when
    ``EXPOSURE_TEST_SCREENSHOTS`` names a folder, copied there for review."""
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000, f"{name}: the page rendered (nearly) blank"
    review = os.environ.get(SCREENSHOT_DIR)
    if review:
        await asyncio.to_thread(Path(review).mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, path, Path(review) / path.name)
    return path


async def assert_laid_out(page: Page, name: str) -> None:
    """Nothing runs off the page sideways, and every chart label lies inside its chart."""
    layout: dict[str, Any] = await page.evaluate(
        """() => {
            const cut = [];
            for (const svg of document.querySelectorAll('svg.pygal-chart')) {
                const box = svg.getBoundingClientRect();
                for (const t of svg.querySelectorAll('text')) {
                    if (!t.textContent.trim()) continue;
                    const r = t.getBoundingClientRect();
                    if (r.width === 0) continue;
                    if (r.left < box.left - 0.5 || r.right > box.right + 0.5) {
                        cut.push(t.textContent.trim());
                    }
                }
            }
            const wide = [];
            for (const el of document.querySelectorAll('main *, header *')) {
                const r = el.getBoundingClientRect();
                if (r.width && r.right > window.innerWidth + 0.5) {
                    wide.push(el.tagName + '.' + el.className);
                }
            }
            return {
                scroll: document.documentElement.scrollWidth,
                inner: window.innerWidth,
                cut: cut,
                wide: wide.slice(0, 5),
                topbar: (document.querySelector('.topbar') || {offsetHeight: 0}).offsetHeight,
            };
        }"""
    )
    assert layout["scroll"] <= layout["inner"], (name, layout)
    assert not layout["wide"], (name, layout["wide"])
    assert not layout["cut"], (name, "chart labels cut off", layout["cut"])
    assert layout["topbar"] <= 64, (name, "the top bar wrapped onto a second line")


async def fonts_used(page: Page, selector: str) -> set[str]:
    """The fonts Chromium actually drew ``selector``'s text with (DevTools protocol)."""
    cdp = await page.context.new_cdp_session(page)
    try:
        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        root = await cdp.send("DOM.getDocument", {"depth": -1})
        node = await cdp.send(
            "DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector}
        )
        assert node["nodeId"], f"nothing matches {selector}"
        fonts = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    finally:
        await cdp.detach()
    return {font["familyName"] for font in fonts["fonts"] if font["glyphCount"]}


async def assert_japanese_font(page: Page, selector: str) -> None:
    fonts = await fonts_used(page, selector)
    assert any("CJK" in f or "JP" in f for f in fonts), (selector, fonts)
