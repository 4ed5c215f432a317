"""HIBP k-anonymity e-mail range matches become exposures, without any plaintext e-mail.

HIBP answers a 6-hex SHA-1 prefix with the 34-hex suffixes of every breached address under it
and, for each, the names of the breaches. prefix + suffix keyed with the pepper
(:func:`~exposure.domain.fingerprints.email_range_key`) is looked up in ``email_range_keys``, which
enrolment filled from the customers' normalised e-mails; unmatched suffixes are dropped
unseen, and nothing about them is stored or logged.

A match has no login for the ordinary matcher and no password, so it is written here, through
the same :func:`~exposure.ingest.writer.write_observations` as every ingest: one exposure
per customer, kind ``email``, no password, no site (a breach name is not a domain, and the
range answer names no site), hence ``password_status`` ``absent`` and, by the contract table,
action ``none`` (recorded and reported, no webhook; a broker-site leak comes through the
stealer-log feed instead). Each breach is one sighting, the breach name as its file; a
(customer, breach) pair already sighted is not written again, so HIBP repeating its answer
on every run adds nothing. The hint is the customer's masked e-mail when there is exactly one.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.base import EmailRangePage, Stored
from exposure.clock import utcnow
from exposure.domain.fingerprints import email_range_key
from exposure.domain.lifecycle import ExposureKey, Observation, SightingAt
from exposure.domain.policy import MatchStrength, PasswordStatus, decide
from exposure.dumps.records import LeakType
from exposure.ingest.results import IngestResult
from exposure.ingest.stats import RunStats
from exposure.ingest.writer import write_observations
from exposure.settings import Settings
from exposure.store import connectors as q
from exposure.store import ingest as ingest_queries

GENERIC_HINT = "e-mail (HIBP range match)"
UNNAMED_BREACH = "unnamed"


async def store_email_range(
    engine: AsyncEngine, settings: Settings, source: str, page: EmailRangePage
) -> tuple[Stored, IngestResult | None]:
    """Match one range answer and write its new sightings and the page's cursor in one
    transaction (``source`` is the connector's name). Returns what the connector is told and
    the ingest run the matches were written under (``None`` when nothing new matched)."""
    pepper = settings.pepper.reveal()
    by_key = {email_range_key(pepper, page.prefix + hit.suffix): hit for hit in page.hits}
    now = utcnow()
    async with engine.begin() as conn:
        breaches: dict[str, set[str]] = {}
        for keyed, customer_id in await q.email_range_customers(conn, page.prefix):
            hit = by_key.get(keyed)
            if hit is not None:
                breaches.setdefault(customer_id, set()).update(hit.websites or (UNNAMED_BREACH,))
        observations = await _observations(conn, breaches, source)
        result = None
        if observations:
            result = await _apply(conn, pepper, source, page, observations, now)
        await q.save_cursor(conn, source, page.cursor, now=now)
    return Stored(len(page.hits), len(breaches), (result,) if result else ()), result


async def _observations(
    conn: AsyncConnection, breaches: dict[str, set[str]], source: str
) -> list[Observation]:
    if not breaches:
        return []
    seen = await q.feed_sightings(conn, breaches, source=source)
    hints = await q.email_hints(conn, breaches)
    decision = decide(
        password_status=PasswordStatus.ABSENT,
        broker_site=False,
        strength=MatchStrength.STRICT,
        leak_type=LeakType.FEED_ALERT,
    )
    observations, ordinal = [], 0
    for customer_id in sorted(breaches):
        new = sorted(b for b in breaches[customer_id] if (customer_id, b) not in seen)
        if not new:
            continue  # every breach already sighted: HIBP said nothing new
        own = hints.get(customer_id, [])
        observation = Observation(
            ExposureKey(customer_id, "email", b"", ""),
            MatchStrength.STRICT.value,
            PasswordStatus.ABSENT.value,
            decision,
            LeakType.FEED_ALERT.value,
            False,
            own[0] if len(own) == 1 else GENERIC_HINT,
        )
        for breach in new:
            ordinal += 1
            observation.sightings.append(SightingAt(ordinal, breach, 0, LeakType.FEED_ALERT.value))
        observations.append(observation)
    return observations


async def _apply(
    conn: AsyncConnection,
    pepper: bytes,
    source: str,
    page: EmailRangePage,
    observations: list[Observation],
    now: datetime,
) -> IngestResult:
    """An ingest run (sightings need one), the exposures, and the run completed at once."""
    digest = hmac.new(pepper, b"hibp-range\x00", hashlib.sha256)
    last = 0
    for obs in observations:
        for sighting in obs.sightings:
            digest.update(f"{obs.key.customer_id}\x1f{sighting.file}\x1e".encode())
            last = max(last, sighting.ordinal)
    label = f"hibp e-mail range {page.prefix}"
    run = await ingest_queries.start_run(
        conn, source=source, input_name=label, content_key=digest.hexdigest()
    )
    outcome, reading = RunStats(matched_records=len(observations)), RunStats(records=len(page.hits))
    await write_observations(
        conn,
        observations,
        run_id=run.id,
        source=source,
        now=now,
        outcome=outcome,
        reading=reading,
        ordinal=last,
        done=True,
    )
    return IngestResult(
        input=label, source=source, resumed=False, stats=outcome.with_reading(reading)
    )
