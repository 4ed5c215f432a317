"""What an http_feed response looks like, and how its items become leak records.

* ``jsonl``: one JSON object per line; a line that is not JSON is skipped as ``bad_json``.
* ``json``: ``{"items": [...], "next": "<url>", "next_cursor": "...", "has_more": false}``
  (``data`` works for ``items``) or a bare array. A body that is not JSON is a
  :class:`~connectors.http.BadResponse` (retriable: usually a proxy's error page).

An item is a JSON object. The login is the first non-empty of ``email``, ``login``,
``username``, ``login_id``, ``phone``; ``password`` is taken exactly as sent; the site comes
from ``site``, ``domain`` or ``url``; a non-empty ``pin`` or ``trading_pin`` marks a leaked
trading PIN. With a password the record is a ``breach_record``; without one, a
``feed_alert`` (the vendor says the identifier leaked). Items that are not objects are skipped
as ``not_object``, objects without a login as ``no_login``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

from connectors.http import BadResponse
from exposure.clock import parse_iso
from exposure.dumps.formats.sites import site_from_url
from exposure.dumps.records import LeakRecord, LeakType

LOGIN_FIELDS = ("email", "login", "username", "login_id", "phone")
SITE_FIELDS = ("site", "domain", "url")
PIN_FIELDS = ("pin", "trading_pin")


@dataclass(slots=True)
class FeedBody:
    """One response: its items (or the spooled file), skipped counts and pagination hints."""

    items: list[Any]
    skipped: Counter[str] = field(default_factory=Counter)
    next_url: str | None = None
    next_cursor: str | None = None
    has_more: bool = True


def parse_body(raw: bytes, fmt: str, url: str) -> FeedBody:
    """Items of a ``jsonl`` or ``json`` body (``url`` resolves a relative ``next``)."""
    if fmt == "jsonl":
        body = FeedBody([])
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                body.items.append(json.loads(line))
            except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
                body.skipped["bad_json"] += 1
        return body
    try:
        document = json.loads(raw)
    except ValueError:
        raise BadResponse(url, "not JSON") from None
    if isinstance(document, list):
        return FeedBody(document)
    if not isinstance(document, dict):
        raise BadResponse(url, "neither a JSON object nor an array")
    items = document.get("items", document.get("data", []))
    if not isinstance(items, list):
        raise BadResponse(url, "items is not an array")
    nxt, cursor = document.get("next"), document.get("next_cursor")
    return FeedBody(
        items,
        next_url=urljoin(url, nxt) if isinstance(nxt, str) and nxt else None,
        next_cursor=str(cursor) if isinstance(cursor, str | int) and cursor != "" else None,
        has_more=document.get("has_more") is not False,
    )


def to_records(body: FeedBody) -> list[LeakRecord]:
    """The body's items as records; the ones that cannot be are counted in ``body.skipped``."""
    records = []
    for line_no, item in enumerate(body.items, 1):
        if not isinstance(item, dict):
            body.skipped["not_object"] += 1
            continue
        record = record_from_item(item, line_no)
        if record is None:
            body.skipped["no_login"] += 1
        else:
            records.append(record)
    return records


def record_from_item(item: Mapping[str, Any], line_no: int) -> LeakRecord | None:
    login = next((v for k in LOGIN_FIELDS if isinstance(v := item.get(k), str) and v.strip()), None)
    if login is None:
        return None
    password = item.get("password")
    password = password if isinstance(password, str) and password != "" else None
    site = next((site_from_url(v) for k in SITE_FIELDS if isinstance(v := item.get(k), str)), None)
    return LeakRecord(
        login=login.strip(),
        password=password,
        leak_type=LeakType.BREACH_RECORD if password is not None else LeakType.FEED_ALERT,
        line_no=line_no,
        site=site,
        has_pin=any(item.get(k) not in (None, "") for k in PIN_FIELDS),
    )


def newest(items: list[Any], field_name: str) -> str | float | None:
    """The time value of the newest item, as sent (ISO string) or as seconds (a number)."""
    best: tuple[float, str | float] | None = None
    for item in items:
        value = item.get(field_name) if isinstance(item, dict) else None
        key = _instant(value)
        if key is not None and (best is None or key > best[0]):
            best = (key, value if isinstance(value, str) else key)
    return best[1] if best else None


def _instant(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            # A time without an offset is read as UTC, the only sane guess for a feed.
            return parse_iso(value, naive_as_utc=True).timestamp()
        except (ValueError, OverflowError):
            return None
    return None


def file_name(response: aiohttp.ClientResponse) -> str:
    """The download's name: ``Content-Disposition``'s, else the URL's, as a plain name only."""
    disposition = response.content_disposition
    candidate = disposition.filename if disposition is not None else None
    if not candidate:
        candidate = Path(response.url.path).name
    # Never a path a server could use to write outside the spool folder.
    name = Path(candidate.replace("\\", "/")).name.strip().lstrip(".")
    return name[:200] or "download"
