"""Helpers for the console's HTTP tests (no tests here): a client on a real test server,
signing in as a browser does, and reading what a page shows."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import create_app
from exposure.settings import Settings

HTML = {"Accept": "text/html,application/xhtml+xml"}
Client = TestClient[web.Request, web.Application]


@asynccontextmanager
async def console_client(
    settings: Settings, engine: AsyncEngine, **overrides: Any
) -> AsyncIterator[Client]:
    app = create_app(dataclasses.replace(settings, **overrides), engine)
    # English pages, unless a test asks otherwise (EXPOSURE_REPORT_LANG defaults to ja).
    async with TestClient(TestServer(app), headers={"Accept-Language": "en"}) as client:
        yield client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, "the page has no form with a CSRF token"
    return match.group(1)


async def sign_in(client: Client, token: str, *, next_path: str = "/dashboard") -> ClientResponse:
    """Open the sign-in page and post the token with the page's CSRF token, like a browser."""
    page = await client.get("/signin", headers=HTML)
    assert page.status == 200
    return await client.post(
        "/signin",
        data={"csrf_token": csrf_of(await page.text()), "token": token, "next": next_path},
        allow_redirects=False,
    )


async def page_text(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path, headers=HTML, allow_redirects=False)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:500])
    return text


def visible(page: str) -> str:
    """The page's text as a reader sees it (no tags, styles or charts)."""
    page = re.sub(r"<(style|svg)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def session_cookie(response: ClientResponse) -> tuple[str, str]:
    """(name, full Set-Cookie header) of the session cookie a response set."""
    for header in response.headers.getall("Set-Cookie", []):
        name = header.split("=", 1)[0]
        if name.endswith("exposure_session"):
            return name, header
    raise AssertionError("no session cookie was set")
