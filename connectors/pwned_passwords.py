"""Keeps the local leaked-password corpus in step with the Pwned Passwords range API, so our
``/range`` answers offline with HIBP's counts as well as our own.

Which ranges: the 5-hex prefixes listed in ``EXPOSURE_PWNED_PASSWORDS_PREFIXES`` or, when
that is empty, every prefix that already occurs in ``leaked_passwords`` (our own dumps fed
it), walked in order, at most ``EXPOSURE_PWNED_PASSWORDS_MAX_PREFIXES`` per run, each run
continuing where the last stopped and starting over after the last prefix.

``GET /range/{prefix}`` with ``Add-Padding: true`` answers ``SUFFIX:COUNT`` lines (CRLF); the
padding rows have count 0 and are dropped. Each range's ``ETag`` is kept in the cursor and sent
back as ``If-None-Match``: ``304`` means the range is unchanged and costs nothing. Counts merge
as ``max(ours, HIBP's)``: the corpus has no per-source column and a sum would double count.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from connectors.base import (
    Connector,
    ConnectorSettings,
    Cursor,
    Page,
    PasswordRangePage,
    Stored,
    parse_http_url,
    parse_positive_int,
    setting,
)
from connectors.http import http_get
from exposure import USER_AGENT

PREFIXES_PER_PAGE = 50
_PREFIX = re.compile(r"[0-9A-F]{5}")
_LINE = re.compile(r"([0-9A-Fa-f]{35}):(\d+)")


def parse_prefixes(text: str) -> tuple[str, ...]:
    prefixes = tuple(sorted({p.strip().upper() for p in text.split(",") if p.strip()}))
    if not all(_PREFIX.fullmatch(p) for p in prefixes):
        raise ValueError("must be comma-separated 5-hex SHA-1 prefixes such as 21BD1,CBFDA")
    return prefixes


@dataclass(frozen=True, slots=True, kw_only=True)
class PwnedPasswordsSettings(ConnectorSettings):
    url: str = setting(
        "EXPOSURE_PWNED_PASSWORDS_URL",
        help="range API base URL",
        default="https://api.pwnedpasswords.com",
        parse=parse_http_url,
    )
    prefixes: tuple[str, ...] = setting(
        "EXPOSURE_PWNED_PASSWORDS_PREFIXES",
        help="fixed prefixes to keep in step (default: those already in the corpus)",
        default=(),
        parse=parse_prefixes,
    )
    max_prefixes: int = setting(
        "EXPOSURE_PWNED_PASSWORDS_MAX_PREFIXES",
        help="ranges fetched per run at most",
        default=5000,
        parse=parse_positive_int,
    )
    concurrency: int = setting(
        "EXPOSURE_PWNED_PASSWORDS_CONCURRENCY",
        help="ranges fetched at once",
        default=4,
        parse=parse_positive_int,
    )


@dataclass(frozen=True, slots=True)
class _Range:
    prefix: str
    etag: str | None
    counts: list[tuple[bytes, int]] | None  # None: 304, unchanged
    bad_lines: int = 0


class PwnedPasswordsConnector(Connector[PwnedPasswordsSettings]):
    """Mirrors Pwned Passwords ranges for the prefixes that matter into ``leaked_passwords``."""

    name = "pwned_passwords"
    settings_type = PwnedPasswordsSettings
    default_schedule = "30 4 * * *"
    description = "Pwned Passwords range API mirrored into the local corpus (ETag-incremental)"

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        data = cursor or {}
        known = data.get("etags")
        etags: dict[str, str] = dict(known) if isinstance(known, dict) else {}
        after = data.get("after")
        position = after if isinstance(after, str) else ""
        limit = self.settings.max_prefixes
        prefixes = await self._prefixes(position, limit)
        if not prefixes and position:
            prefixes = await self._prefixes("", limit)  # the last run reached the end
        for start in range(0, len(prefixes), PREFIXES_PER_PAGE):
            batch = prefixes[start : start + PREFIXES_PER_PAGE]
            ranges = await self._fetch_all(batch, etags)
            counts: list[tuple[bytes, int]] = []
            skipped: Counter[str] = Counter()
            for fetched in ranges:
                if fetched.etag:
                    etags[fetched.prefix] = fetched.etag
                if fetched.counts is not None:
                    counts.extend(fetched.counts)
                if fetched.bad_lines:
                    skipped["bad_range_line"] += fetched.bad_lines
            at_end = start + len(batch) == len(prefixes) and len(prefixes) < limit
            yield PasswordRangePage(
                counts=counts,
                prefixes=len(batch),
                unchanged=sum(1 for f in ranges if f.counts is None),
                cursor={"etags": dict(etags), "after": "" if at_end else batch[-1]},
                skipped=skipped,
            )

    async def _prefixes(self, after: str, limit: int) -> Sequence[str]:
        if self.settings.prefixes:
            return [p for p in self.settings.prefixes if p > after][:limit]
        return await self.inputs.password_range_prefixes(after=after, limit=limit)

    async def _fetch_all(self, batch: Sequence[str], etags: dict[str, str]) -> list[_Range]:
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(prefix: str) -> _Range:
            async with gate:
                return await self._fetch(prefix, etags.get(prefix))

        # A TaskGroup cancels the other fetches as soon as one fails.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(prefix)) for prefix in batch]
        return [task.result() for task in tasks]

    async def _fetch(self, prefix: str, etag: str | None) -> _Range:
        headers = {"user-agent": USER_AGENT, "Add-Padding": "true"}
        if etag:
            headers["If-None-Match"] = etag
        url = f"{self.settings.url}/range/{prefix}"
        async with http_get(self.session, url, headers=headers, auth_hint=_HINT) as response:
            if response.status == 304:
                return _Range(prefix, etag, None)
            text = await response.text(encoding="ascii", errors="replace")
            new_etag = response.headers.get("ETag")
        counts, bad = _parse(prefix, text)
        return _Range(prefix, new_etag, counts, bad)


_HINT = "the Pwned Passwords API needs no key; check EXPOSURE_PWNED_PASSWORDS_URL and any proxy"


def _parse(prefix: str, text: str) -> tuple[list[tuple[bytes, int]], int]:
    counts: list[tuple[bytes, int]] = []
    bad = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            bad += 1
            continue
        count = int(match.group(2))
        if count > 0:  # padding rows (Add-Padding) have count 0
            counts.append((bytes.fromhex(prefix + match.group(1)), count))
    return counts, bad
