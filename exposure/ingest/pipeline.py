"""One ingestion: a dump becomes exposures, sightings, outbox events and corpus digests
(docs/architecture.md, "Ingest").

The reader turns the input into an ordered stream of events; records are gathered into
batches of ``EXPOSURE_INGEST_BATCH_EVENTS`` events; the :class:`~exposure.ingest.evaluator.
BatchEvaluator` matches, verifies and decides each batch, and then ONE transaction writes the
batch's verdicts, exposures, sightings, outbox rows, staged corpus digests and the run's
checkpoint (:func:`exposure.ingest.writer.write_observations`).

Three batches overlap: one is read while the one before is evaluated and the one before that
is written. Evaluations run in order, and so do transactions (one at a time), so a run killed
at any moment resumes from its last committed batch and ends with exactly what an
uninterrupted run would have written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.clock import utcnow
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.reader import MemberEnd, MemberStart, read_dump, read_range
from exposure.dumps.records import LeakRecord
from exposure.ingest import evaluator
from exposure.ingest.evaluator import Batch, BatchEvaluator, Evaluation
from exposure.ingest.input_keys import content_key, range_key, records_key
from exposure.ingest.matching import EnrolledIndex
from exposure.ingest.results import IngestResult
from exposure.ingest.stats import RunStats
from exposure.ingest.writer import write_observations
from exposure.metrics import INGEST_LINES, INGEST_RECORDS
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import Settings
from exposure.store import corpus as corpus_store
from exposure.store import ingest as ingest_queries

# Batches evaluated or written while the next is read: two (one evaluating, one writing)
# overlap the three stages; more would only hold more memory. A batch is admitted once the
# batch two before it is written, which is what lets an evaluation trust the database for
# every verdict but the previous batch's (carried in memory).
_IN_FLIGHT = 2

# Extra writes that must commit with the run's last batch (a connector's cursor).
Finalizer = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """One run over one input, shared by all its batches. ``outcome`` is counted into by
    each write, in batch order; ``finalize`` runs in the last batch's transaction."""

    run: ingest_queries.Run
    name: str
    source: str
    finalize: Finalizer | None
    outcome: RunStats


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cut:
    """Where a batch ends: the ordinal of its last event, the reading counters as they stand
    there (what its checkpoint covers), and whether it is the run's last batch."""

    ordinal: int
    reading: RunStats
    last: bool = False


@dataclass(slots=True)
class _InFlight:
    """A batch on its way to the database: evaluating, then writing (each waits its turn)."""

    evaluating: asyncio.Task[Evaluation]
    writing: asyncio.Task[None]

    def cancel(self) -> None:
        self.evaluating.cancel()
        self.writing.cancel()


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
        self._evaluator = BatchEvaluator(engine, settings, index, verifier)
        self._on_bytes = on_bytes
        self._on_lines = on_lines
        self._committed_lines: dict[int, int] = {}
        self._pepper = settings.pepper.reveal()

    @classmethod
    async def load_index(cls, engine: AsyncEngine) -> EnrolledIndex:
        return await evaluator.load_index(engine)

    async def ingest(
        self,
        path: Path,
        *,
        source: str,
        format_override: str | None = None,
        finalize: Finalizer | None = None,
        key: Awaitable[str] | None = None,
    ) -> IngestResult:
        """Ingest one input (file, folder or archive), resuming an interrupted run of it.

        ``finalize`` runs inside the transaction that completes the run: a connector's cursor
        is saved there, together with the data it covers. ``key``: the input's
        :func:`content_key`, when the caller started computing it already.
        """
        self._evaluator.prefetch_index()  # loads while the file is keyed: the file needs it
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
    ) -> IngestResult:
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
    ) -> IngestResult:
        """Ingest a connector's page of records as if it were one file named ``label``."""
        key = records_key(self._pepper, label, records)
        events = [
            MemberStart(label, "feed", None),
            *records,
            MemberEnd(label, "feed", "", len(records), len(records)),
        ]
        return await self._ingest_events(events, label, key, source=source, finalize=finalize)

    def _events(self, path: Path, format_override: str | None) -> Iterator[object]:
        return read_dump(
            path,
            format_override=format_override,
            is_broker_site=self._settings.broker_domains.matches,
            progress=self._on_bytes,
        )

    async def _ingest_events(
        self,
        events: Iterable[object],
        name: str,
        key: str,
        *,
        source: str,
        finalize: Finalizer | None,
    ) -> IngestResult:
        async with self._engine.begin() as conn:
            run = await ingest_queries.start_run(
                conn, source=source, input_name=name, content_key=key
            )
        # Reading counts into `stats` while earlier batches are evaluated and written; each
        # write counts its outcome into the context's and checkpoints both as they stood at
        # the batch's end.
        stats = RunStats.from_json(run.stats)
        ctx = RunContext(
            run=run,
            name=name,
            source=source,
            finalize=finalize,
            outcome=RunStats.from_json(run.stats),
        )
        # The lines metric goes on from what the run's checkpoint had counted, which the
        # interrupted attempt counted already.
        self._committed_lines.setdefault(run.id, stats.lines)
        batch_events = self._settings.ingest_batch_events
        batch = Batch()
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
                    matching = await self._evaluator.match_block(event, run.feeds_corpus)
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
                if uncommitted >= batch_events:
                    if self._on_lines is not None:
                        self._on_lines(uncommitted)
                    await self._submit(
                        ctx, in_flight, batch, _Cut(ordinal=ordinal, reading=stats.reading())
                    )
                    batch, uncommitted = Batch(), 0
            cut = _Cut(ordinal=ordinal, reading=stats.reading(), last=True)
            await self._submit(ctx, in_flight, batch, cut)
            await in_flight[-1].writing  # it waited for every write before it
        except BaseException:
            for pending in in_flight:  # their transactions roll back: a resumed run redoes them
                pending.cancel()
            await asyncio.gather(
                *(task for p in in_flight for task in (p.evaluating, p.writing)),
                return_exceptions=True,
            )
            raise
        return IngestResult(
            input=name, source=source, resumed=run.resumed, stats=ctx.outcome.with_reading(stats)
        )

    async def _submit(
        self, ctx: RunContext, in_flight: deque[_InFlight], batch: Batch, cut: _Cut
    ) -> None:
        """Start evaluating ``batch`` (after the previous batch's evaluation) and writing it
        (after the previous write).

        The oldest batch in flight is written first, if need be: a batch's evaluation then
        finds every verdict before the previous batch's committed, and that batch's verdicts
        in memory (see :meth:`~exposure.ingest.evaluator.BatchEvaluator.evaluate`)."""
        if len(in_flight) == _IN_FLIGHT:
            await in_flight.popleft().writing
        previous = in_flight[-1] if in_flight else None
        evaluating = asyncio.create_task(
            self._evaluator.evaluate(
                batch, ctx.run.feeds_corpus, after=previous.evaluating if previous else None
            )
        )
        writing = asyncio.create_task(
            self._write(ctx, evaluating, cut, after=previous.writing if previous else None)
        )
        in_flight.append(_InFlight(evaluating, writing))

    async def _write(
        self,
        ctx: RunContext,
        evaluating: asyncio.Task[Evaluation],
        cut: _Cut,
        *,
        after: asyncio.Task[None] | None,
    ) -> None:
        """Write an evaluated batch in ONE transaction with the run's checkpoint at ``cut``;
        the run's last batch also runs the context's ``finalize``."""
        evaluation = await evaluating
        if after is not None:
            await after  # transactions commit in batch order
        now = utcnow()
        async with self._engine.begin() as conn:
            await ingest_queries.record_checks(conn, evaluation.verdicts)
            await corpus_store.stage_rows(conn, evaluation.corpus)
            ctx.outcome.add_outcome(evaluation.counts)
            await write_observations(
                conn,
                evaluation.observations,
                run_id=ctx.run.id,
                source=ctx.source,
                now=now,
                outcome=ctx.outcome,
                reading=cut.reading,
                ordinal=cut.ordinal,
                done=cut.last,
            )
            if cut.last and ctx.finalize is not None:
                await ctx.finalize(conn)
        # Counted once committed: a transaction that fails leaves its lines to the retry.
        lines_before = self._committed_lines.get(ctx.run.id, 0)
        self._committed_lines[ctx.run.id] = cut.reading.lines
        INGEST_LINES.inc(cut.reading.lines - lines_before)
        INGEST_RECORDS.inc(evaluation.records)
