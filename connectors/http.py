"""HTTP for connectors: one GET helper and the mapping of statuses to what the runner does.

401/403 are :class:`AccessDenied` (fatal: fix the key or the subscription), other 4xx
:class:`FeedRejected` (fatal), network errors, 408/425/429 and 5xx :class:`FeedUnavailable`
(retriable, honouring ``Retry-After``). Messages carry the URL without its query string and
never a header value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

from exposure.clock import retry_after_seconds, utcnow
from exposure.errors import FatalError, RetriableError
from exposure.secret import redact_url


class AccessDenied(FatalError):
    """401/403: the credentials or the subscription do not allow this; retrying cannot help."""

    def __init__(self, url: str, status: int, hint: str) -> None:
        self.url, self.status = redact_url(url), status
        super().__init__(f"{self.url} refused access (HTTP {status}): {hint}")


class FeedRejected(FatalError):
    """Another 4xx: the request itself is wrong for this feed."""

    def __init__(self, url: str, status: int) -> None:
        self.url, self.status = redact_url(url), status
        super().__init__(
            f"{self.url} rejected the request (HTTP {status}); check the connector's URL "
            "and settings against the vendor's documentation"
        )


class FeedUnavailable(RetriableError):
    """Network failure, 408/425/429 or 5xx: back off (at least ``retry_after`` seconds)."""

    def __init__(
        self, url: str, status: int | None, *, retry_after: float | None = None, detail: str = ""
    ) -> None:
        self.url, self.status, self.retry_after = redact_url(url), status, retry_after
        what = f"HTTP {status}" if status is not None else f"connection failed: {detail}"
        wait = f"; it asked to wait {retry_after:g}s" if retry_after is not None else ""
        super().__init__(f"{self.url} is unavailable ({what}){wait}; the run backs off and retries")


class BadResponse(RetriableError):
    """A 2xx response that cannot be read (a proxy's error page, a truncated body)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url, self.problem = redact_url(url), problem
        super().__init__(f"{self.url} sent a response that cannot be read ({problem})")


class PaginationLoop(FatalError):
    """The feed sent us back to a page already fetched in this run."""

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)
        super().__init__(
            f"pagination loop: {self.url} named the same next page twice in one run; pages "
            "stored so far are kept. Report it to the feed's vendor"
        )


def check_status(response: aiohttp.ClientResponse, *, auth_hint: str) -> None:
    """Map an HTTP status to what the runner should do; 2xx and 304 pass."""
    status, url = response.status, str(response.url)
    if 200 <= status < 300 or status == 304:
        return
    if status in (401, 403):
        raise AccessDenied(url, status, auth_hint)
    if status in (408, 425, 429) or status >= 500:
        raise FeedUnavailable(
            url,
            status,
            retry_after=retry_after_seconds(response.headers.get("retry-after"), utcnow()),
        )
    raise FeedRejected(url, status)


@asynccontextmanager
async def http_get(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    auth_hint: str,
    accept: tuple[int, ...] = (),
) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``url``; statuses in ``accept`` are handed back as they are, others go through
    :func:`check_status`. Network errors, also while the body is read, become
    :class:`FeedUnavailable` (the library's message is dropped: it may quote the query)."""
    try:
        async with session.get(url, headers=dict(headers), params=params) as response:
            if response.status not in accept:
                check_status(response, auth_hint=auth_hint)
            yield response
    except (aiohttp.ClientError, TimeoutError) as error:
        raise FeedUnavailable(url, None, detail=type(error).__name__) from None
