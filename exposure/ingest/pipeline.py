"""One ingestion: a dump becomes exposures, sightings, outbox events and corpus digests.

The reader turns the input into an ordered stream of events; records are gathered into
batches; each batch is matched against the enrolled index (plain lines by the native fast
path, :mod:`exposure.dumps.fastpath`, on worker threads as they are read), its candidate
customers' passwords are verified (argon2, on every core, each pair once ever), the policy
decides, and then ONE transaction writes the batch's exposures, sightings, outbox rows, staged
corpus digests and the run's checkpoint.

Three batches overlap: one is read while the one before is evaluated and the one before that
is written. Evaluations run in order, and so do transactions (one at a time), so a run killed
at any moment resumes from its last committed batch and ends with exactly what an
uninterrupted run would have written.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.domain.fingerprints import password_fingerprint
from exposure.domain.policy import MatchStrength, decide
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.reader import MemberEnd, MemberStart, read_dump, read_range
from exposure.dumps.records import LeakRecord
from exposure.ingest.input_keys import content_key, range_key, records_key
from exposure.ingest.matching import (
    PREFIX_BYTES,
    EnrolledIndex,
    Fingerprinter,
    LeakedKey,
    candidate_keys,
)
from exposure.ingest.stats import RunStats
from exposure.metrics import INGEST_LINES, INGEST_RECORDS
from exposure.passwords.verifier import (
    PasswordVerifier,
    is_verifiable,
    looks_like_hash,
    password_status,
)
from exposure.settings import Settings
from exposure.store import corpus as corpus_store
from exposure.store import exposures as exposure_queries
from exposure.store import ingest as ingest_queries
from exposure.store.exposures import ExposureKey, Observation, SightingAt
from exposure.store.ingest import CheckKey, EnrolledMatch
from exposure.store.types import utcnow

log = logging.getLogger("exposure")

# Events per transaction: large enough to amortise the commit (its round trips, and on SQLite
# the WAL checkpoint it triggers: 500,000 ingests 10M lines 10% quicker than 200,000), small
# enough that a killed run re-reads little. EXPOSURE_INGEST_BATCH_EVENTS overrides it (tests
# use tiny batches).
BATCH_EVENTS = int(os.environ.get("EXPOSURE_INGEST_BATCH_EVENTS", "500000"))

# Batches evaluated or written while the next is read: two (one evaluating, one writing)
# overlap the three stages; more would only hold more memory. A batch is admitted once the
# batch two before it is written, which is what lets an evaluation trust the database for
# every verdict but the previous batch's (carried in memory).
_IN_FLIGHT = 2


def _yield_to_the_pipeline() -> None:
    """Matching threads run at a lower priority: the event loop and the database threads,
    whose latency is an ingest's critical path, then get a core as soon as they wake (and
    matching still has every cycle they leave). Linux only: elsewhere the call would lower
    the whole process, not this thread."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + 10, 19)
        )


# Native matching of fast-path blocks: one thread per core (the C code releases the GIL).
_MATCHERS = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 1, thread_name_prefix="match", initializer=_yield_to_the_pipeline
)

# Extra writes that must commit with the run's last batch (a connector's cursor).
Finalizer = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(slots=True)
class _Evaluation:
    """A batch matched, verified and decided: what its transaction writes."""

    observations: list[Observation] = field(default_factory=list)
    verdicts: dict[CheckKey, bool] = field(default_factory=dict)
    # The SHA-1 digests of the batch's usable passwords, as rows to stage (spooled already).
    corpus: list[corpus_store.PendingRow] = field(default_factory=list)
    counts: RunStats = field(default_factory=RunStats)  # its outcome counters
    records: int = 0


@dataclass(slots=True)
class _InFlight:
    """A batch on its way to the database: evaluating, then writing (each waits its turn)."""

    evaluating: asyncio.Task[_Evaluation]
    writing: asyncio.Task[None]

    def cancel(self) -> None:
        self.evaluating.cancel()
        self.writing.cancel()


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
        self._spool = corpus_store.spool_of(engine)
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
        key: Awaitable[str] | None = None,
    ) -> dict[str, Any]:
        """Ingest one input (file, folder or archive), resuming an interrupted run of it.

        ``finalize`` runs inside the transaction that completes the run: a connector's cursor
        is saved there, together with the data it covers. ``key``: the input's
        :func:`content_key`, when the caller started computing it already.
        """
        if self._index is None:
            self._index_task()  # loads while the file is keyed: a file to ingest needs it
        file_key = await (key or asyncio.to_thread(content_key, self._pepper, path))
        events = self._events(path, format_override)
        return await self._ingest_events(
            events, path.name, file_key, source=source, finalize=finalize
        )

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
        # Reading counts into `stats` while earlier batches are evaluated and written; each
        # write counts its outcome into `outcome` and checkpoints both as they stood at the
        # batch's end.
        stats = RunStats.from_json(run.stats)
        outcome = RunStats.from_json(run.stats)
        # The lines metric goes on from what the run's checkpoint had counted, which the
        # interrupted attempt counted already.
        self._committed_lines.setdefault(run.id, stats.lines)
        batch = _Batch()
        ordinal = uncommitted = 0
        member = ""
        in_flight: deque[_InFlight] = deque()
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
                    await asyncio.sleep(0)  # let the batches in flight take their next step
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
                    await self._submit(
                        in_flight, run, batch, ordinal, stats.reading(), outcome, source=source
                    )
                    batch, uncommitted = _Batch(), 0
            await self._submit(
                in_flight,
                run,
                batch,
                ordinal,
                stats.reading(),
                outcome,
                source=source,
                done=True,
                finalize=finalize,
            )
            await in_flight[-1].writing  # it waited for every write before it
        except BaseException:
            for pending in in_flight:  # their transactions roll back: a resumed run redoes them
                pending.cancel()
            await asyncio.gather(
                *(task for p in in_flight for task in (p.evaluating, p.writing)),
                return_exceptions=True,
            )
            raise
        summary = outcome.with_reading(stats).as_json()
        return {"input": name, "source": source, "resumed": run.resumed, **summary}

    def _events(self, path: Path, format_override: str | None) -> Iterator[object]:
        return read_dump(
            path,
            format_override=format_override,
            is_broker_site=self._settings.broker_domains.matches,
            progress=self._on_bytes,
        )

    async def _submit(
        self,
        in_flight: deque[_InFlight],
        run: ingest_queries.Run,
        batch: _Batch,
        ordinal: int,
        reading: RunStats,
        outcome: RunStats,
        *,
        source: str,
        done: bool = False,
        finalize: Finalizer | None = None,
    ) -> None:
        """Start evaluating ``batch`` (after the previous batch's evaluation) and writing it
        (after the previous write); ``done``: the run's last batch, written with ``finalize``.

        The oldest batch in flight is written first, if need be: a batch's evaluation then
        finds every verdict before the previous batch's committed, and that batch's verdicts
        in memory (see :meth:`_evaluate`)."""
        if len(in_flight) == _IN_FLIGHT:
            await in_flight.popleft().writing
        previous = in_flight[-1] if in_flight else None
        evaluating = asyncio.create_task(
            self._evaluate(batch, run.feeds_corpus, after=previous.evaluating if previous else None)
        )
        writing = asyncio.create_task(
            self._write(
                run,
                evaluating,
                ordinal,
                reading,
                outcome,
                source=source,
                done=done,
                finalize=finalize,
                after=previous.writing if previous else None,
            )
        )
        in_flight.append(_InFlight(evaluating, writing))

    async def _write(
        self,
        run: ingest_queries.Run,
        evaluating: asyncio.Task[_Evaluation],
        ordinal: int,
        reading: RunStats,
        outcome: RunStats,
        *,
        source: str,
        done: bool,
        finalize: Finalizer | None,
        after: asyncio.Task[None] | None,
    ) -> None:
        """Write an evaluated batch in ONE transaction with the checkpoint: ``ordinal`` and
        the counters (``reading``'s as read up to it, ``outcome``'s once this batch is
        counted). ``done`` marks the run's last batch; its ``finalize`` runs in its
        transaction."""
        evaluation = await evaluating
        if after is not None:
            await after  # transactions commit in batch order
        now = utcnow()
        async with self._engine.begin() as conn:
            await ingest_queries.record_checks(conn, evaluation.verdicts)
            applied = await exposure_queries.apply_observations(
                conn, evaluation.observations, run_id=run.id, source=source, now=now
            )
            outcome.add_outcome(evaluation.counts)
            outcome.new_exposures.update(applied.new_by_action)
            outcome.escalations += applied.escalations
            outcome.sightings += applied.sightings
            outcome.events += applied.events
            await corpus_store.stage_rows(conn, evaluation.corpus)
            checkpoint = outcome.with_reading(reading).as_json()
            await ingest_queries.save_checkpoint(conn, run.id, ordinal, checkpoint, done=done)
            if finalize is not None:
                await finalize(conn)
        # Counted once committed: a transaction that fails leaves its lines to the retry.
        lines_before = self._committed_lines.get(run.id, 0)
        self._committed_lines[run.id] = reading.lines
        INGEST_LINES.inc(reading.lines - lines_before)
        INGEST_RECORDS.inc(evaluation.records)

    async def _evaluate(
        self, batch: _Batch, feeds_corpus: bool, *, after: asyncio.Task[_Evaluation] | None
    ) -> _Evaluation:
        """Match, verify and decide, outside any transaction, after the previous batch's
        evaluation: its verdicts may not be committed yet, and a pair is verified once."""
        earlier = (await after).verdicts if after is not None else {}
        evaluation = _Evaluation(records=len(batch.records))
        corpus: list[bytes] = []  # joined once: a batch's digests run to megabytes
        if batch.blocks:
            evaluation.records += sum(block.count for _, _, block, _ in batch.blocks)
            await self._unpack_blocks(batch, corpus)
        records = batch.records
        usable: list[str | None] = []
        for record in records:
            password = record.password
            ok = bool(password) and not looks_like_hash(password or "")
            usable.append(password if ok else None)
            if ok and feeds_corpus and password is not None:
                corpus.append(
                    hashlib.sha1(
                        password.encode("utf-8", "surrogatepass"), usedforsecurity=False
                    ).digest()
                )
        if corpus:  # spooled here, off the chain of transactions
            evaluation.corpus = await asyncio.to_thread(
                corpus_store.pending_rows, b"".join(corpus), self._spool
            )
        if not records:
            return evaluation
        counts = evaluation.counts
        keys, readable = candidate_keys(
            await self._enrolled(), self._fingerprinter, [r.login for r in records]
        )
        counts.without_identifier += len(records) - readable
        if not keys:
            return evaluation
        async with self._engine.connect() as conn:
            enrolled = await ingest_queries.lookup_identifiers(conn, [k.fingerprint for k in keys])
            matches = _confirmed(keys, enrolled)
            hashes = await ingest_queries.password_hashes(conn, {m[1].customer_id for m in matches})
            wanted = self._check_keys(matches, usable, hashes)
            unseen = set(wanted.values()) - earlier.keys()
            known = await ingest_queries.known_checks(conn, unseen)
        known.update((key, earlier[key]) for key in wanted.values() if key in earlier)
        started = time.perf_counter()
        verdicts = await self._verify(wanted, known, usable, hashes)
        counts.verify_seconds += time.perf_counter() - started
        counts.cached_verdicts += len(known)
        counts.verifications += len(verdicts)
        counts.matched_records += len({position for position, _ in matches})
        evaluation.verdicts = verdicts
        verdict_of = {**known, **verdicts}
        evaluation.observations = self._observe(batch, matches, usable, hashes, wanted, verdict_of)
        return evaluation

    async def _match_block(
        self, block: RecordBlock, feeds_corpus: bool
    ) -> asyncio.Future[tuple[list[int], bytes]]:
        """Start the native match of a block on a worker thread (it releases the GIL), so
        that every core matches while this thread goes on reading."""
        table = (await self._enrolled()).lookup_table()
        return asyncio.wrap_future(_MATCHERS.submit(block.match, self._pepper, table, feeds_corpus))

    async def _unpack_blocks(self, batch: _Batch, corpus: list[bytes]) -> None:
        """Take the native fast path's verdicts: records that cannot match only add their
        passwords to the corpus; the others join the batch's records for the Python path."""
        for first, member, block, matching in batch.blocks:
            positions, digests = await matching
            for position in positions:
                batch.add(first + position, member, block.record(position))
            corpus.append(digests)

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
            if password is not None and phc is not None and is_verifiable(phc):
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
