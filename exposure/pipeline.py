"""One ingestion: a dump becomes exposures, sightings, outbox events and corpus digests.

The reader turns the input into an ordered stream of events; records are gathered into
batches; each batch is matched against the enrolled index (plain lines by the native fast
path, :mod:`exposure.dumps.fastpath`, on worker threads as they are read), its candidate
customers' passwords are verified (argon2, on every core, each pair once ever), the policy
decides, and then ONE transaction writes the batch's exposures, sightings, outbox rows, staged
corpus digests and the run's checkpoint, while the next batch is read. Commits stay in order,
one at a time, so a run killed at any moment resumes from its last committed batch and ends
with exactly what an uninterrupted run would have written.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.dump_keys import content_key, range_key, records_key
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.reader import MemberEnd, MemberStart, read_dump, read_range
from exposure.dumps.records import LeakRecord
from exposure.hashing import password_fingerprint
from exposure.matching import PREFIX_BYTES, EnrolledIndex, Fingerprinter, LeakedKey, candidate_keys
from exposure.metrics import INGEST_LINES, INGEST_RECORDS
from exposure.passwords import PasswordVerifier, is_argon2_phc, looks_like_hash, password_status
from exposure.policy import MatchStrength, decide
from exposure.run_stats import RunStats
from exposure.settings import Settings
from exposure.store import corpus as corpus_store
from exposure.store import exposures as exposure_queries
from exposure.store import ingest as ingest_queries
from exposure.store.exposures import ExposureKey, Observation, SightingAt
from exposure.store.ingest import CheckKey, EnrolledMatch
from exposure.store.types import utcnow

log = logging.getLogger("exposure")

# Events per transaction: large enough to amortise the commit, small enough that a killed run
# re-reads little. EXPOSURE_INGEST_BATCH_EVENTS overrides it (tests use tiny batches).
BATCH_EVENTS = int(os.environ.get("EXPOSURE_INGEST_BATCH_EVENTS", "200000"))

# Native matching of fast-path blocks: one thread per core (the C code releases the GIL).
_MATCHERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="match")

# Extra writes that must commit with the run's last batch (a connector's cursor).
Finalizer = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(slots=True)
class _Batch:
    records: list[LeakRecord] = field(default_factory=list)
    places: list[tuple[int, str]] = field(default_factory=list)  # (ordinal, member name)
    # Records still packed by the native fast path: (ordinal of the first, member, block, and
    # the block's match running on a worker thread).
    blocks: list[tuple[int, str, RecordBlock, asyncio.Future[tuple[list[int], bytes]]]] = field(
        default_factory=list
    )

    def add(self, ordinal: int, member: str, record: LeakRecord) -> None:
        self.records.append(record)
        self.places.append((ordinal, member))


class Ingestor:
    """Ingests inputs with one engine, one enrolled index and one password verifier.

    ``index=None`` loads the enrolled index when the first batch needs it: a scheduled
    connector run that finds nothing new then costs no index load.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        index: EnrolledIndex | None,
        verifier: PasswordVerifier,
        *,
        on_bytes: Callable[[int], None] | None = None,
        on_lines: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._index = index
        self._index_loading: asyncio.Task[EnrolledIndex] | None = None
        self._verifier = verifier
        self._on_bytes = on_bytes
        self._on_lines = on_lines
        self._committed_lines: dict[int, int] = {}
        self._pepper = settings.pepper.reveal()
        self._fingerprinter = Fingerprinter(
            self._pepper,
            login_id_case_sensitive=settings.login_id_case_sensitive,
            phone_region=settings.phone_region,
        )

    @classmethod
    async def load_index(cls, engine: AsyncEngine) -> EnrolledIndex:
        async with engine.connect() as conn:
            joined = await ingest_queries.fingerprint_prefixes(conn, PREFIX_BYTES)
        index = EnrolledIndex.from_prefixes(joined)
        log.info("enrolled index: %d fingerprints, %d KiB", len(index), index.nbytes // 1024)
        return index

    def _index_task(self) -> asyncio.Task[EnrolledIndex]:
        if self._index_loading is None:
            self._index_loading = asyncio.create_task(self.load_index(self._engine))
        return self._index_loading

    async def _enrolled(self) -> EnrolledIndex:
        """The enrolled index, loaded on first need (or already loading: see ``ingest``)."""
        if self._index is None:
            try:
                self._index = await self._index_task()
            except Exception:
                self._index_loading = None  # the next batch tries again
                raise
        return self._index

    async def ingest(
        self,
        path: Path,
        *,
        source: str,
        format_override: str | None = None,
        finalize: Finalizer | None = None,
    ) -> dict[str, Any]:
        """Ingest one input (file, folder or archive), resuming an interrupted run of it.

        ``finalize`` runs inside the transaction that completes the run: a connector's cursor
        is saved there, together with the data it covers.
        """
        if self._index is None:
            self._index_task()  # loads while the file is keyed: a file to ingest needs it
        key = await asyncio.to_thread(content_key, self._pepper, path)
        events = self._events(path, format_override)
        return await self._ingest_events(events, path.name, key, source=source, finalize=finalize)

    async def ingest_range(
        self,
        path: Path,
        start: int,
        end: int,
        *,
        file_key: str,
        fmt: str,
        source: str,
        finalize: Finalizer | None = None,
    ) -> dict[str, Any]:
        """Ingest bytes ``start``-``end`` (inclusive, line-aligned) of the plain file at ``path``,
        parsed as ``fmt``, resuming an interrupted ingest of that same range.

        ``file_key`` is the whole file's :func:`content_key` (passed in: hashing the whole file
        once per range would read it once per range). Sightings name the file
        ``<name>@<start>-<end>`` and number lines from the range's first line.
        Raises :class:`OSError` when the file cannot be opened.
        """
        name = f"{path.name}@{start}-{end}"
        events = read_range(
            path,
            start,
            end,
            fmt=fmt,
            name=name,
            is_broker_site=self._settings.broker_domains.matches,
            progress=self._on_bytes,
        )
        key = range_key(self._pepper, file_key, start, end)
        return await self._ingest_events(events, name, key, source=source, finalize=finalize)

    async def ingest_records(
        self,
        records: Sequence[LeakRecord],
        *,
        label: str,
        source: str,
        finalize: Finalizer | None = None,
    ) -> dict[str, Any]:
        """Ingest a connector's page of records as if it were one file named ``label``."""
        key = records_key(self._pepper, label, records)
        events = [
            MemberStart(label, "feed", None),
            *records,
            MemberEnd(label, "feed", "", len(records), len(records)),
        ]
        return await self._ingest_events(events, label, key, source=source, finalize=finalize)

    async def _ingest_events(
        self,
        events: Iterable[object],
        name: str,
        key: str,
        *,
        source: str,
        finalize: Finalizer | None,
    ) -> dict[str, Any]:
        async with self._engine.begin() as conn:
            run = await ingest_queries.start_run(
                conn, source=source, input_name=name, content_key=key
            )
        # Reading counts into `stats` while the previous batch commits; each commit counts its
        # outcome into `outcome` and checkpoints both as they stood at the batch's end.
        stats = RunStats.from_json(run.stats)
        outcome = RunStats.from_json(run.stats)
        batch = _Batch()
        ordinal = uncommitted = 0
        member = ""
        committing: asyncio.Task[None] | None = None
        try:
            for event in events:
                if isinstance(event, RecordBlock):  # one event per record it holds
                    first, ordinal = ordinal + 1, ordinal + event.count
                    if ordinal <= run.checkpoint:
                        continue
                    if first <= run.checkpoint:  # only if the block boundaries moved since
                        event = event.tail(run.checkpoint - first + 1)
                        first = run.checkpoint + 1
                    stats.records += event.count
                    matching = await self._match_block(event, run.feeds_corpus)
                    batch.blocks.append((first, member, event, matching))
                    uncommitted += event.count
                    await asyncio.sleep(0)  # let the commit in flight take its next step
                else:
                    ordinal += 1
                    if isinstance(event, MemberStart):
                        member = event.name
                    if ordinal <= run.checkpoint:
                        continue  # committed by the interrupted run we are resuming
                    stats.observe(event)
                    if isinstance(event, LeakRecord):
                        stats.records += 1
                        batch.add(ordinal, member, event)
                    uncommitted += 1
                if uncommitted >= BATCH_EVENTS:
                    if self._on_lines is not None:
                        self._on_lines(uncommitted)
                    if committing is not None:
                        await committing  # commits stay in order: one in flight at a time
                    committing = asyncio.create_task(
                        self._commit(
                            run, batch, ordinal, stats.reading(), outcome, source=source, done=False
                        )
                    )
                    batch, uncommitted = _Batch(), 0
            if committing is not None:
                await committing
        except BaseException:
            if committing is not None:  # its transaction rolls back: a resumed run redoes it
                committing.cancel()
                await asyncio.gather(committing, return_exceptions=True)
            raise
        last = stats.reading()
        await self._commit(
            run, batch, ordinal, last, outcome, source=source, done=True, finalize=finalize
        )
        summary = outcome.with_reading(stats).as_json()
        return {"input": name, "source": source, "resumed": run.resumed, **summary}

    def _events(self, path: Path, format_override: str | None) -> Iterator[object]:
        return read_dump(
            path,
            format_override=format_override,
            is_broker_site=self._settings.broker_domains.matches,
            progress=self._on_bytes,
        )

    async def _commit(
        self,
        run: ingest_queries.Run,
        batch: _Batch,
        ordinal: int,
        reading: RunStats,
        outcome: RunStats,
        *,
        source: str,
        done: bool,
        finalize: Finalizer | None = None,
    ) -> None:
        """Match, verify and decide outside the transaction; then write everything at once,
        with the checkpoint: ``ordinal`` and the counters (``reading``'s as read up to it,
        ``outcome``'s once this batch is counted). ``done`` marks the run's last batch."""
        lines_before = self._committed_lines.get(run.id, 0)
        self._committed_lines[run.id] = reading.lines
        records = len(batch.records) + sum(block.count for _, _, block, _ in batch.blocks)
        observations, verdicts, corpus = await self._evaluate(batch, outcome, run.feeds_corpus)
        now = utcnow()
        async with self._engine.begin() as conn:
            await ingest_queries.record_checks(conn, verdicts)
            applied = await exposure_queries.apply_observations(
                conn, observations, run_id=run.id, source=source, now=now
            )
            outcome.new_exposures.update(applied.new_by_action)
            outcome.escalations += applied.escalations
            outcome.sightings += applied.sightings
            outcome.events += applied.events
            await corpus_store.stage(conn, bytes(corpus))
            checkpoint = outcome.with_reading(reading).as_json()
            await ingest_queries.save_checkpoint(conn, run.id, ordinal, checkpoint, done=done)
            if finalize is not None:
                await finalize(conn)
        INGEST_LINES.inc(reading.lines - lines_before)
        INGEST_RECORDS.inc(records)

    async def _evaluate(
        self, batch: _Batch, stats: RunStats, feeds_corpus: bool
    ) -> tuple[list[Observation], dict[CheckKey, bool], bytearray]:
        corpus = bytearray()  # 20-byte SHA-1 digests of the batch's usable passwords
        if batch.blocks:
            await self._unpack_blocks(batch, corpus)
        records = batch.records
        if not records:
            return [], {}, corpus
        usable: list[str | None] = []
        for record in records:
            password = record.password
            ok = bool(password) and not looks_like_hash(password or "")
            usable.append(password if ok else None)
            if ok and feeds_corpus and password is not None:
                corpus += hashlib.sha1(
                    password.encode("utf-8", "surrogatepass"), usedforsecurity=False
                ).digest()
        keys, readable = candidate_keys(
            await self._enrolled(), self._fingerprinter, [r.login for r in records]
        )
        stats.without_identifier += len(records) - readable
        if not keys:
            return [], {}, corpus
        async with self._engine.connect() as conn:
            enrolled = await ingest_queries.lookup_identifiers(conn, [k.fingerprint for k in keys])
            matches = _confirmed(keys, enrolled)
            hashes = await ingest_queries.password_hashes(conn, {m[1].customer_id for m in matches})
            wanted = self._check_keys(matches, usable, hashes)
            known = await ingest_queries.known_checks(conn, set(wanted.values()))
        started = time.perf_counter()
        verdicts = await self._verify(wanted, known, usable, hashes)
        stats.verify_seconds += time.perf_counter() - started
        stats.cached_verdicts += len(known)
        stats.verifications += len(verdicts)
        stats.matched_records += len({position for position, _ in matches})
        verdict_of = {**known, **verdicts}
        return self._observe(batch, matches, usable, hashes, wanted, verdict_of), verdicts, corpus

    async def _match_block(
        self, block: RecordBlock, feeds_corpus: bool
    ) -> asyncio.Future[tuple[list[int], bytes]]:
        """Start the native match of a block on a worker thread (it releases the GIL), so
        that every core matches while this thread goes on reading."""
        table = (await self._enrolled()).lookup_table()
        return asyncio.wrap_future(_MATCHERS.submit(block.match, self._pepper, table, feeds_corpus))

    async def _unpack_blocks(self, batch: _Batch, corpus: bytearray) -> None:
        """Take the native fast path's verdicts: records that cannot match only add their
        passwords to the corpus; the others join the batch's records for the Python path."""
        for first, member, block, matching in batch.blocks:
            positions, digests = await matching
            for position in positions:
                batch.add(first + position, member, block.record(position))
            corpus += digests

    def _check_keys(
        self,
        matches: list[tuple[int, EnrolledMatch]],
        usable: list[str | None],
        hashes: dict[str, str | None],
    ) -> dict[tuple[int, str], CheckKey]:
        """The (customer, password, enrolled hash) triple each verifiable match needs."""
        wanted: dict[tuple[int, str], CheckKey] = {}
        for position, match in matches:
            password, phc = usable[position], hashes.get(match.customer_id)
            if password is not None and phc is not None and is_argon2_phc(phc):
                hash_key = hashlib.sha256(phc.encode()).digest()[:16]
                wanted[(position, match.customer_id)] = (
                    match.customer_id,
                    password_fingerprint(self._pepper, password),
                    hash_key,
                )
        return wanted

    async def _verify(
        self,
        wanted: dict[tuple[int, str], CheckKey],
        known: dict[CheckKey, bool],
        usable: list[str | None],
        hashes: dict[str, str | None],
    ) -> dict[CheckKey, bool]:
        """Run argon2 for the triples never checked before, each once."""
        todo: dict[CheckKey, tuple[str, str]] = {}
        for (position, customer_id), check in wanted.items():
            password, phc = usable[position], hashes[customer_id]
            if check not in known and check not in todo and password is not None and phc:
                todo[check] = (phc, password)
        if not todo:
            return {}
        results = await self._verifier.verify_many(list(todo.values()))
        return dict(zip(todo, results, strict=True))

    def _observe(
        self,
        batch: _Batch,
        matches: list[tuple[int, EnrolledMatch]],
        usable: list[str | None],
        hashes: dict[str, str | None],
        wanted: dict[tuple[int, str], CheckKey],
        verdict_of: dict[CheckKey, bool],
    ) -> list[Observation]:
        observations: dict[ExposureKey, Observation] = {}
        domains = self._settings.broker_domains
        for position, match in matches:
            record = batch.records[position]
            password = usable[position]
            check = wanted.get((position, match.customer_id))
            status = password_status(
                hashes.get(match.customer_id),
                record.password,
                verdict_of[check] if check is not None else None,
            )
            decision = decide(
                password_status=status,
                broker_site=domains.matches(record.site),
                strength=MatchStrength(match.strength),
                leak_type=record.leak_type,
                has_pin=record.has_pin,
            )
            key = ExposureKey(
                match.customer_id,
                match.kind,
                password_fingerprint(self._pepper, password) if password is not None else b"",
                record.site or "",
            )
            ordinal, member = batch.places[position]
            candidate = Observation(
                key,
                match.strength,
                status.value,
                decision,
                record.leak_type.value,
                record.has_pin,
                match.hint,
            )
            current = observations.setdefault(key, candidate)
            if candidate.rank() > current.rank():
                candidate.sightings = current.sightings
                observations[key] = current = candidate
            current.sightings.append(
                SightingAt(ordinal, member, record.line_no, record.leak_type.value)
            )
        return list(observations.values())


def _confirmed(
    keys: list[LeakedKey], enrolled: dict[bytes, list[EnrolledMatch]]
) -> list[tuple[int, EnrolledMatch]]:
    """Full-fingerprint matches, strict and variant keys compared like with like; one match per
    (record, customer, kind), strict preferred."""
    best: dict[tuple[int, str, str], EnrolledMatch] = {}
    for key in keys:
        for match in enrolled.get(key.fingerprint, ()):
            if match.strength != key.strength or match.kind != key.kind:
                continue
            slot = (key.record, match.customer_id, match.kind)
            if slot not in best or match.strength == "strict":
                best[slot] = match
    return [(record, match) for (record, _, _), match in best.items()]
