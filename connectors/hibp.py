"""Have I Been Pwned API v3: stealer logs for the broker's sites, and the k-anonymity e-mail
range search for enrolled customers.

1. ``GET /stealerlogsbywebsitedomain/{domain}`` for each ``EXPOSURE_BROKER_DOMAINS`` entry:
   the e-mail addresses infostealers captured while their owners logged in to that site. Each
   becomes a ``stealer_log`` record with no password and ``site`` = the broker domain, i.e. a
   broker-site leak. HIBP returns the whole list every time, so a keyed digest of each
   domain's list is kept in the cursor and an unchanged list is not ingested again.
2. ``GET /breachedaccount/range/{prefix}`` for each distinct 6-hex SHA-1 prefix of an
   enrolled e-mail (``email_range_keys``); only the prefix leaves the machine. The answer
   (``[{"hashSuffix": ..., "websites": [...]}, ...]``) is handed to the runner, which keys
   prefix + suffix with the pepper and matches it; nothing else is kept. At most
   ``EXPOSURE_HIBP_RANGE_MAX_PREFIXES`` prefixes per run, continuing where the last run
   stopped and starting over after the last prefix.

Every request carries ``hibp-api-key`` and a descriptive ``user-agent``, and waits for a
client-side limiter (``EXPOSURE_HIBP_RATE_PER_MINUTE``, the key's plan). A 429 is retried by
the runner after its ``retry-after``; 401/403 stop the run; 404 means "nothing found".
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.base import (
    BreachedEmailHash,
    Connector,
    ConnectorInputs,
    ConnectorSettings,
    Cursor,
    EmailRangePage,
    Page,
    RecordsPage,
    Stored,
    parse_bool,
    parse_http_url,
    parse_positive_float,
    parse_positive_int,
    parse_secret,
    setting,
)
from connectors.http import BadResponse, http_get
from exposure import USER_AGENT
from exposure.dumps.records import LeakRecord, LeakType
from exposure.secret import Secret

_SUFFIX = re.compile(r"[0-9A-F]{34}")
_AUTH_HINT = (
    "check EXPOSURE_HIBP_API_KEY and that its subscription includes this API (stealer logs "
    "need a Pro plan and the domain verified in HIBP's domain search dashboard; the e-mail "
    "range search needs a plan with k-anonymity access). Set EXPOSURE_HIBP_STEALER_LOGS=false "
    "or EXPOSURE_HIBP_RANGE_SEARCH=false to leave one out"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HibpSettings(ConnectorSettings):
    api_key: Secret[str] = setting(
        "EXPOSURE_HIBP_API_KEY",
        help="the hibp-api-key of your HIBP subscription",
        parse=parse_secret,
        secret=True,
    )
    url: str = setting(
        "EXPOSURE_HIBP_URL",
        help="API base URL",
        default="https://haveibeenpwned.com/api/v3",
        parse=parse_http_url,
    )
    user_agent: str = setting(
        "EXPOSURE_HIBP_USER_AGENT",
        help="user-agent sent to HIBP (it requires one)",
        default=USER_AGENT,
    )
    rate_per_minute: float = setting(
        "EXPOSURE_HIBP_RATE_PER_MINUTE",
        help="requests per minute your key's plan allows",
        default=10.0,
        parse=parse_positive_float,
    )
    stealer_logs: bool = setting(
        "EXPOSURE_HIBP_STEALER_LOGS",
        help="query stealer logs for each broker domain",
        default=True,
        parse=parse_bool,
    )
    range_search: bool = setting(
        "EXPOSURE_HIBP_RANGE_SEARCH",
        help="run the k-anonymity e-mail range search",
        default=True,
        parse=parse_bool,
    )
    range_max_prefixes: int = setting(
        "EXPOSURE_HIBP_RANGE_MAX_PREFIXES",
        help="e-mail prefixes searched per run at most",
        default=300,
        parse=parse_positive_int,
    )


class RateLimiter:
    """Spaces request starts at least ``60 / per_minute`` seconds apart (one key, one process)."""

    def __init__(self, per_minute: float) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            start = max(now, self._next)
            self._next = start + self._interval
            if start > now:
                await asyncio.sleep(start - now)


class HibpConnector(Connector[HibpSettings]):
    """Stealer logs for the broker's domains and the e-mail range search, via HIBP API v3."""

    name = "hibp"
    settings_type = HibpSettings
    default_schedule = "0 3 * * *"
    description = "Have I Been Pwned: stealer logs for broker domains, k-anonymity e-mail search"

    def __init__(
        self, settings: HibpSettings, *, session: aiohttp.ClientSession, inputs: ConnectorInputs
    ) -> None:
        super().__init__(settings, session=session, inputs=inputs)
        # One limiter per connector instance: it outlives the retries within a run.
        self._limiter = RateLimiter(self.settings.rate_per_minute)

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        data = cursor or {}
        logs = data.get("stealer_logs")
        digests: dict[str, str] = dict(logs) if isinstance(logs, dict) else {}
        after = data.get("range_after")
        range_after = after if isinstance(after, str) else ""

        def state() -> Cursor:
            return {"stealer_logs": dict(digests), "range_after": range_after}

        if self.settings.stealer_logs:
            for domain in sorted(self.inputs.broker_domains.domains):
                answer = await self._get(f"stealerlogsbywebsitedomain/{domain}")
                addresses, skipped = _addresses(answer, self.settings.url)
                digest = self.inputs.keyed_digest()
                for address in sorted(addresses):
                    digest.update(address.encode("utf-8", "surrogatepass") + b"\n")
                if digests.get(domain) == digest.hexdigest():
                    continue  # the same list as last time: nothing new to ingest
                digests[domain] = digest.hexdigest()
                records = [
                    LeakRecord(address, None, LeakType.STEALER_LOG, line_no, site=domain)
                    for line_no, address in enumerate(addresses, 1)
                ]
                yield RecordsPage(
                    records=records,
                    label=f"hibp stealer logs {domain}",
                    cursor=state(),
                    skipped=skipped,
                )
        if not self.settings.range_search:
            return
        limit = self.settings.range_max_prefixes
        prefixes = await self.inputs.email_range_prefixes(after=range_after, limit=limit)
        if not prefixes and range_after:
            range_after = ""  # the last run reached the end: start over
            prefixes = await self.inputs.email_range_prefixes(after="", limit=limit)
        for position, prefix in enumerate(prefixes, 1):
            answer = await self._get(f"breachedaccount/range/{prefix}")
            hits, skipped = _hits(answer, self.settings.url)
            at_end = position == len(prefixes) and len(prefixes) < limit
            range_after = "" if at_end else prefix
            yield EmailRangePage(prefix=prefix, hits=hits, cursor=state(), skipped=skipped)

    async def _get(self, path: str) -> Any:
        """The decoded JSON answer, or ``None`` for 404 (HIBP's "nothing found")."""
        await self._limiter.wait()
        url = f"{self.settings.url}/{path}"
        headers = {
            "hibp-api-key": self.settings.api_key.reveal(),
            "user-agent": self.settings.user_agent,
            "accept": "application/json",
        }
        async with http_get(
            self.session, url, headers=headers, auth_hint=_AUTH_HINT, accept=(404,)
        ) as response:
            if response.status == 404:
                return None
            raw = await response.read()
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise BadResponse(url, "not JSON") from None


def _addresses(answer: Any, url: str) -> tuple[list[str], Counter[str]]:
    skipped: Counter[str] = Counter()
    if answer is None:
        return [], skipped
    if not isinstance(answer, list):
        raise BadResponse(url, "stealer-log answer is not an array")
    addresses = []
    for value in answer:
        if isinstance(value, str) and "@" in value:
            addresses.append(value.strip())
        else:
            skipped["not_an_address"] += 1
    return addresses, skipped


def _hits(answer: Any, url: str) -> tuple[Sequence[BreachedEmailHash], Counter[str]]:
    skipped: Counter[str] = Counter()
    if answer is None:
        return [], skipped
    if not isinstance(answer, list):
        raise BadResponse(url, "range answer is not an array")
    hits = []
    for entry in answer:
        suffix = entry.get("hashSuffix") if isinstance(entry, dict) else None
        if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix.upper()):
            skipped["bad_range_entry"] += 1
            continue
        websites = entry.get("websites")
        names = (
            tuple(w for w in websites if isinstance(w, str)) if isinstance(websites, list) else ()
        )
        hits.append(BreachedEmailHash(suffix.upper(), names))
    return hits, skipped
