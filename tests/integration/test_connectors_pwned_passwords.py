"""The pwned_passwords connector against a local stand-in for the Pwned Passwords range API:
padding dropped, counts merged with max(), ETag-incremental, configured prefixes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.store import corpus as corpus_store
from exposure.store.models import LeakedPassword
from tests.feeds import SAMPLES, FakeService, cursor, run_now, serve, settings_for

RANGE_FILE = next(SAMPLES.glob("pwned_passwords_range_*.txt"))
PREFIX = RANGE_FILE.stem.rsplit("_", 1)[1]
RANGE = RANGE_FILE.read_text()
OURS = "Tsubaki#Invented-2025"  # in the sample with count 4242
OTHER = "Kaede!Invented-0007"  # another prefix, which the service pads only


def sha1(password: str) -> bytes:
    return hashlib.sha1(password.encode(), usedforsecurity=False).digest()


def serve_ranges(service: FakeService) -> list[str]:
    """Answers every prefix (the sample for PREFIX, padding only for others), with ETags."""
    asked: list[str] = []

    async def ranges(request: web.Request) -> web.Response:
        prefix = request.path.rsplit("/", 1)[1]
        asked.append(prefix)
        assert request.headers["Add-Padding"] == "true"
        etag = f'W/"{prefix}-v1"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        body = RANGE if prefix == PREFIX else "\r\n".join(f"{n:035X}:0" for n in range(3))
        return web.Response(text=body, headers={"ETag": etag})

    for password in (OURS, OTHER):
        service.handle(f"/range/{sha1(password).hex().upper()[:5]}", ranges)
    return asked


async def _corpus(engine: AsyncEngine) -> dict[bytes, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(LeakedPassword.sha1, LeakedPassword.count))
        return {bytes(h): c for h, c in rows}


async def _seed(engine: AsyncEngine, settings: Any, tmp_path: Path) -> None:
    """Our own dump feeds the corpus, as an ingest does."""
    dump = tmp_path / "dump.txt"
    dump.write_text(f"someone@example.org:{OURS}\nsomeone.else@example.org:{OTHER}\n")
    async with PasswordVerifier(workers=1) as verifier:
        ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
        await ingestor.ingest(dump, source="manual")
    await corpus_store.compact(engine)  # what the API's background fold does


async def test_ranges_merge_with_max_and_follow_etags(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    sample = {
        bytes.fromhex(PREFIX + suffix): int(count)
        for suffix, count in (line.split(":") for line in RANGE.splitlines())
    }
    bigger_here = next(h for h, c in sample.items() if 0 < c < 50_000 and h != sha1(OURS))
    async with serve() as service:
        asked = serve_ranges(service)
        settings = settings_for(database_url, tmp_path, EXPOSURE_PWNED_PASSWORDS_URL=service.url)
        await _seed(engine, settings, tmp_path)
        async with engine.begin() as conn:
            await corpus_store.merge_corpus_max(conn, [(bigger_here, 50_000)])
        assert (await _corpus(engine))[sha1(OURS)] == 1

        first = await run_now(engine, settings, "pwned_passwords")
        assert first["outcome"] == "success" and first["pages"] == 1
        corpus = await _corpus(engine)
        assert corpus[sha1(OURS)] == 4242  # max(ours 1, HIBP 4242)
        assert corpus[bigger_here] == 50_000  # max keeps ours when it is larger
        assert all(corpus[h] == c for h, c in sample.items() if c > 0 and h != bigger_here)
        assert not any(h in corpus for h, c in sample.items() if c == 0)  # padding dropped
        assert sorted(asked) == sorted({sha1(p).hex().upper()[:5] for p in (OURS, OTHER)})
        saved = await cursor(engine, "pwned_passwords")
        assert saved["etags"][PREFIX] == f'W/"{PREFIX}-v1"' and saved["after"] == ""

        second = await run_now(engine, settings, "pwned_passwords")
    assert second["outcome"] == "success" and second["records"] == 0  # every range: 304
    assert await _corpus(engine) == corpus
    assert len(asked) == 4


async def test_configured_prefixes_and_a_bad_setting(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as service:
        asked = serve_ranges(service)
        settings = settings_for(
            database_url,
            tmp_path,
            EXPOSURE_PWNED_PASSWORDS_URL=service.url,
            EXPOSURE_PWNED_PASSWORDS_PREFIXES=PREFIX.lower(),
        )
        await _seed(engine, settings, tmp_path)
        summary = await run_now(engine, settings, "pwned_passwords")
        assert summary["outcome"] == "success" and asked == [PREFIX]

        broken = settings_for(
            database_url,
            tmp_path,
            EXPOSURE_PWNED_PASSWORDS_URL=service.url,
            EXPOSURE_PWNED_PASSWORDS_PREFIXES="XYZ12",
        )
        failed = await run_now(engine, broken, "pwned_passwords")
    assert (failed["outcome"], failed["error_class"]) == ("failed", "fatal")
    assert failed["error"].startswith("EXPOSURE_PWNED_PASSWORDS_PREFIXES: must be")
    assert asked == [PREFIX]
