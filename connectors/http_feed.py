"""A vendor feed over HTTP(S): JSON lines, a JSON envelope, CSV or whole dump files.

Formats (``EXPOSURE_HTTP_FEED_FORMAT``):

* ``jsonl`` and ``json``: items become leak records (see :mod:`connectors.http_feed_items`);
  an item that cannot be read is skipped and counted by reason, never the run's end.
* ``csv`` and ``file``: the body is spooled to a temporary file (under ``TMPDIR``) and
  ingested whole under the name the server gives it (``Content-Disposition``) or the URL's;
  ``file`` detects the format (archives, stealer logs, SQL ...), ``csv`` forces CSV.

Pagination (``EXPOSURE_HTTP_FEED_PAGINATION``), each saved as the cursor with its page:

* ``none``: one request per run;
* ``next``: follow the envelope's ``next`` or a ``Link: <...>; rel="next"`` header;
* ``cursor``: send ``?cursor=<next_cursor>`` (envelope field or ``X-Next-Cursor`` header);
* ``since``: send ``?since=<timestamp of the newest item stored>``; a short page ends the run.

A page that brings no items ends the run. Requesting a URL twice in one run is a pagination
loop: the run stops with an error (pages stored before it are kept). The first request of a
run is conditional (``If-None-Match`` / ``If-Modified-Since``): ``304`` means nothing new. A
re-polled page whose content is unchanged (keyed digest in the cursor) is not ingested again.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from connectors.base import (
    Connector,
    ConnectorSettings,
    Cursor,
    FilesPage,
    Page,
    RecordsPage,
    Stored,
    parse_choice,
    parse_http_url,
    parse_positive_int,
    parse_secret,
    setting,
)
from connectors.http import PaginationLoop, http_get
from connectors.http_feed_items import FeedBody, file_name, newest, parse_body, to_records
from exposure import USER_AGENT
from exposure.errors import ConfigurationError, FatalError
from exposure.secret import Secret, redact_url

log = logging.getLogger("exposure.connectors.http_feed")

_AUTH_HINT = (
    "check EXPOSURE_HTTP_FEED_AUTH_HEADER and EXPOSURE_HTTP_FEED_AUTH_VALUE (the vendor's "
    "API key or token) and that the subscription covers this feed"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFeedSettings(ConnectorSettings):
    url: str = setting(
        "EXPOSURE_HTTP_FEED_URL",
        help="the feed's URL, e.g. https://feed.vendor.example/v1/leaks",
        parse=parse_http_url,
    )
    format: str = setting(
        "EXPOSURE_HTTP_FEED_FORMAT",
        help="jsonl, json, csv or file",
        default="jsonl",
        parse=parse_choice("jsonl", "json", "csv", "file"),
    )
    pagination: str = setting(
        "EXPOSURE_HTTP_FEED_PAGINATION",
        help="none, next, cursor or since",
        default="none",
        parse=parse_choice("none", "next", "cursor", "since"),
    )
    auth_header: str = setting(
        "EXPOSURE_HTTP_FEED_AUTH_HEADER",
        help="header carrying the credential",
        default="Authorization",
    )
    auth_value: Secret[str] | None = setting(
        "EXPOSURE_HTTP_FEED_AUTH_VALUE",
        help="its value, e.g. 'Bearer <token>'",
        default=None,
        parse=parse_secret,
        secret=True,
    )
    page_size: int = setting(
        "EXPOSURE_HTTP_FEED_PAGE_SIZE",
        help="items asked for per request",
        default=500,
        parse=parse_positive_int,
    )
    limit_param: str = setting(
        "EXPOSURE_HTTP_FEED_LIMIT_PARAM",
        help="query parameter for the page size",
        default="limit",
    )
    cursor_param: str = setting(
        "EXPOSURE_HTTP_FEED_CURSOR_PARAM",
        help="query parameter for the cursor",
        default="cursor",
    )
    since_param: str = setting(
        "EXPOSURE_HTTP_FEED_SINCE_PARAM", help="query parameter for since", default="since"
    )
    timestamp_field: str = setting(
        "EXPOSURE_HTTP_FEED_TIMESTAMP_FIELD",
        help="item field holding its time (ISO 8601 or epoch seconds), for since",
        default="timestamp",
    )
    max_pages: int = setting(
        "EXPOSURE_HTTP_FEED_MAX_PAGES",
        help="requests per run at most; the next run goes on",
        default=1000,
        parse=parse_positive_int,
    )
    max_bytes: int = setting(
        "EXPOSURE_HTTP_FEED_MAX_BYTES",
        help="largest response accepted, in bytes",
        default=4 << 30,
        parse=parse_positive_int,
    )

    def __post_init__(self) -> None:
        if self.pagination == "since" and self.format not in ("jsonl", "json"):
            raise ConfigurationError(
                "EXPOSURE_HTTP_FEED_PAGINATION",
                "since needs EXPOSURE_HTTP_FEED_FORMAT jsonl or json (only items carry a time)",
            )


class ResponseTooLarge(FatalError):
    def __init__(self, url: str, limit: int) -> None:
        super().__init__(
            f"{redact_url(url)} sent more than {limit} bytes; raise EXPOSURE_HTTP_FEED_MAX_BYTES "
            "if that is expected"
        )


@dataclass(frozen=True, slots=True)
class _State:
    """The cursor: where the next run starts, and how to recognise an unchanged first page."""

    url: str | None = None
    cursor: str | None = None
    since: str | float | None = None
    etag: str | None = None
    last_modified: str | None = None
    digest: str | None = None

    @classmethod
    def load(cls, cursor: Cursor) -> _State:
        data = cursor or {}

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        since = data.get("since")
        return cls(
            text("url"),
            text("cursor"),
            since if isinstance(since, str | int | float) and not isinstance(since, bool) else None,
            text("etag"),
            text("last_modified"),
            text("digest"),
        )

    def dump(self) -> Cursor:
        fields = ("url", "cursor", "since", "etag", "last_modified", "digest")
        return {key: getattr(self, key) for key in fields if getattr(self, key) is not None}


class HttpFeedConnector(Connector[HttpFeedSettings]):
    """Pulls a vendor's leak feed; see the module documentation for formats and pagination."""

    name = "http_feed"
    settings_type = HttpFeedSettings
    default_schedule = "every 15m"
    description = "vendor feed over HTTPS: JSON lines, JSON, CSV or dump files, paginated"

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        s = self.settings
        state = _State.load(cursor)
        seen: set[str] = set()
        spool = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="exposure-feed-"))
        try:
            for number in range(s.max_pages):
                url = self._request_url(state)
                if url in seen:
                    raise PaginationLoop(url)
                seen.add(url)
                headers = self._headers(state if number == 0 else None)
                async with http_get(
                    self.session, url, headers=headers, auth_hint=_AUTH_HINT
                ) as rsp:
                    if rsp.status == 304:
                        return  # not modified since the last run
                    digest = self.inputs.keyed_digest()
                    if s.format in ("csv", "file"):
                        path = await self._spool(rsp, spool / str(number), digest)
                        body = FeedBody(
                            [path] if path else [], next_cursor=rsp.headers.get("X-Next-Cursor")
                        )
                    else:
                        raw = await self._read(rsp)
                        digest.update(raw)
                        body = parse_body(raw, s.format, url)
                        body.next_cursor = body.next_cursor or rsp.headers.get("X-Next-Cursor")
                    if body.next_url is None and "next" in rsp.links:
                        body.next_url = str(rsp.links["next"]["url"])
                    validators = (rsp.headers.get("ETag"), rsp.headers.get("Last-Modified"))
                if number == 0 and state.digest == digest.hexdigest():
                    return  # the re-polled page has not changed
                if not body.items and not body.skipped:
                    return  # nothing (more) to fetch
                state = self._advance(state, url, body, validators, digest.hexdigest())
                if s.format in ("csv", "file"):
                    fmt = "csv" if s.format == "csv" else None
                    yield FilesPage(files=body.items, format=fmt, cursor=state.dump())
                    await asyncio.to_thread(shutil.rmtree, spool / str(number), True)
                else:
                    records = to_records(body)
                    label = f"{_where(url)} #{self._tag(url)}"
                    yield RecordsPage(
                        records=records, label=label, cursor=state.dump(), skipped=body.skipped
                    )
                if not self._more(body):
                    return
            log.info("http_feed: %d requests this run; the next run goes on", s.max_pages)
        finally:
            await asyncio.to_thread(shutil.rmtree, spool, True)

    # -- requests ---------------------------------------------------------------------------

    def _request_url(self, state: _State) -> str:
        s = self.settings
        params: dict[str, str] = {}
        if s.pagination == "next":
            if state.url:
                return state.url
            params[s.limit_param] = str(s.page_size)
        elif s.pagination == "cursor":
            params[s.limit_param] = str(s.page_size)
            if state.cursor:
                params[s.cursor_param] = state.cursor
        elif s.pagination == "since":
            params[s.limit_param] = str(s.page_size)
            if state.since is not None:
                params[s.since_param] = str(state.since)
        return str(URL(s.url).extend_query(params)) if params else s.url

    def _headers(self, conditional: _State | None) -> dict[str, str]:
        s = self.settings
        accept = {"jsonl": "application/x-ndjson", "json": "application/json", "csv": "text/csv"}
        headers = {"User-Agent": USER_AGENT, "Accept": accept.get(s.format, "*/*")}
        if s.auth_value is not None:
            headers[s.auth_header] = s.auth_value.reveal()
        if conditional is not None and conditional.etag:
            headers["If-None-Match"] = conditional.etag
        if conditional is not None and conditional.last_modified:
            headers["If-Modified-Since"] = conditional.last_modified
        return headers

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size > self.settings.max_bytes:
                raise ResponseTooLarge(str(response.url), self.settings.max_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _spool(
        self, response: aiohttp.ClientResponse, folder: Path, digest: hmac.HMAC
    ) -> Path | None:
        await asyncio.to_thread(folder.mkdir, parents=True)
        path = folder / file_name(response)
        size = 0
        handle = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in response.content.iter_chunked(1 << 20):
                size += len(chunk)
                if size > self.settings.max_bytes:
                    raise ResponseTooLarge(str(response.url), self.settings.max_bytes)
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return path if size else None  # an empty download brings nothing

    # -- bodies -----------------------------------------------------------------------------

    def _advance(
        self,
        state: _State,
        url: str,
        body: FeedBody,
        validators: tuple[str | None, str | None],
        digest: str,
    ) -> _State:
        """The cursor once this page is stored; validators kept only for a page re-polled."""
        style = self.settings.pagination
        new = state
        if style == "next":
            new = replace(state, url=body.next_url or url)
        elif style == "cursor" and body.next_cursor:
            new = replace(state, cursor=body.next_cursor)
        elif style == "since":
            latest = newest(body.items, self.settings.timestamp_field)
            if latest is not None:
                new = replace(state, since=latest)
        if self._request_url(new) == url:
            return replace(new, etag=validators[0], last_modified=validators[1], digest=digest)
        return replace(new, etag=None, last_modified=None, digest=None)

    def _more(self, body: FeedBody) -> bool:
        style = self.settings.pagination
        if style == "next":
            return body.next_url is not None
        if style == "cursor":
            return body.next_cursor is not None and body.has_more
        if style == "since":
            return len(body.items) >= self.settings.page_size
        return False

    def _tag(self, url: str) -> str:
        """A short keyed tag of the request: stable for a re-fetch (so an interrupted page
        resumes), without putting a query string in a label."""
        digest = self.inputs.keyed_digest()
        digest.update(url.encode())
        return digest.hexdigest()[:12]


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path or '/'}"
