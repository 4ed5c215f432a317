"""One ingestion: a dump becomes exposures, sightings, outbox events and corpus digests
(docs/architecture.md, "Ingest").

The reader turns the input into an ordered stream of events; records are gathered into
batches of ``EXPOSURE_INGEST_BATCH_EVENTS`` events; the :class:`~exposure.ingest.evaluator.
BatchEvaluator` matches each batch and looks up what its verifications need, and a
:class:`~exposure.ingest.streaming.BatchStream` verifies it, most urgent first. Observations
are committed as their verdicts arrive, a few at a time, each step in its own short
transaction (:func:`exposure.ingest.writer.write_observations`), so the first forced reset
of a dump leaves within seconds whatever its size (docs/decisions/streaming-verdicts.md).
Once every verification of a batch is done (its tweak checks included), one more
transaction stages its corpus digests and moves the run's checkpoint past it; checkpoints
move in batch order.

Batches overlap: one is read while the one before is verified; a batch's first
verifications start once the previous batch's are done (a pair is verified once), and tweak
checks run behind them all. Transactions run one at a time, so a run killed at any moment
resumes from its last checkpoint, re-reads what came after, writes only what the interrupted
run had not (its sightings say what it had) and ends with exactly what an uninterrupted run
would have written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.clock import utcnow
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.reader import MemberEnd, MemberStart, read_dump, read_range
from exposure.dumps.records import LeakRecord
from exposure.ingest import evaluator
from exposure.ingest.evaluator import Batch, BatchEvaluator
from exposure.ingest.input_keys import content_key, range_key, records_key
from exposure.ingest.matching import EnrolledIndex
from exposure.ingest.results import IngestResult
from exposure.ingest.stats import RunStats
from exposure.ingest.streaming import BatchStream, Step, StepBuffer
from exposure.ingest.tweak_checks import TweakChecks
from exposure.ingest.writer import write_observations
from exposure.metrics import INGEST_LINES, INGEST_RECORDS
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import Settings
from exposure.store import corpus as corpus_store
from exposure.store import ingest as ingest_queries
from exposure.store.ingest import CheckKey

# Batches read but not yet through their first verifications: one verifying, one matched
# and waiting its turn, while the next is read. More would only hold more memory (a batch's
# records); a batch past its first verifications keeps only its matches while its tweak
# checks and writes finish.
_IN_FLIGHT = 2

# Extra writes that must commit with the run's last batch (a connector's cursor).
Finalizer = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cut:
    """Where a batch ends: the ordinal of its last event, the reading counters as they stand
    there (what its checkpoint covers), and whether it is the run's last batch."""

    ordinal: int
    reading: RunStats
    last: bool = False


@dataclass(slots=True, kw_only=True)
class RunContext:
    """One run over one input, shared by all its batches. ``outcome`` is counted into by
    each write; ``committed`` is the checkpoint as the last batch-completing write left it
    (every write saves it, so a step's counters go with it); ``finalize`` runs in the last
    batch's transaction. ``verdicts``: every verdict this run found, so a batch never
    verifies a pair an earlier one did, committed or not."""

    run: ingest_queries.Run
    name: str
    source: str
    finalize: Finalizer | None
    outcome: RunStats
    committed: _Cut
    tweaks: TweakChecks
    verdicts: dict[CheckKey, bool] = field(default_factory=dict)
    writing: asyncio.Lock = field(default_factory=asyncio.Lock)  # one transaction at a time


@dataclass(slots=True)
class _InFlight:
    """A batch on its way to the database: ``verified`` once its first verifications are
    done (the next batch's may start), ``task`` done once its checkpoint is committed."""

    verified: asyncio.Event
    task: asyncio.Task[None]
    cut: _Cut
    firsts_written: asyncio.Event  # its first decisions are all committed

    async def verifications_done(self) -> None:
        """Until ``verified``; raises what the batch raised if it failed first."""
        if not self.verified.is_set():
            waiting = asyncio.ensure_future(self.verified.wait())
            try:
                await asyncio.wait({waiting, self.task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
        if self.task.done() and not self.verified.is_set():
            self.task.result()  # raises the batch's error (or CancelledError)


class Ingestor:
    """Ingests inputs with one engine, one enrolled index and one password verifier.

    ``index=None`` loads the enrolled index when the first batch needs it: a scheduled
    connector run that finds nothing new then costs no index load. ``on_events`` is called
    after each commit that queued webhook events (the daemon wakes its delivery loop).
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
        on_events: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._verifier = verifier
        self._evaluator = BatchEvaluator(engine, settings, index, verifier)
        self._on_bytes = on_bytes
        self._on_lines = on_lines
        self._on_events = on_events
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
        # Reading counts into `stats` while earlier batches are verified and written; each
        # write counts its outcome into the context's and checkpoints both, with the reading
        # counters as they stood at the end of the last batch fully done.
        stats = RunStats.from_json(run.stats)
        ctx = RunContext(
            run=run,
            name=name,
            source=source,
            finalize=finalize,
            outcome=RunStats.from_json(run.stats),
            committed=_Cut(ordinal=run.checkpoint, reading=stats.reading()),
            tweaks=TweakChecks(self._verifier, self._settings.tweak_guesses),
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
            await in_flight[-1].task  # it waited for every batch before it
        except BaseException:
            for pending in in_flight:  # their transactions roll back: a resumed run redoes them
                pending.task.cancel()
            await asyncio.gather(*(p.task for p in in_flight), return_exceptions=True)
            raise
        return IngestResult(
            input=name, source=source, resumed=run.resumed, stats=ctx.outcome.with_reading(stats)
        )

    async def _submit(
        self, ctx: RunContext, in_flight: deque[_InFlight], batch: Batch, cut: _Cut
    ) -> None:
        """Start ``batch`` on its way (:meth:`_batch`), once fewer than ``_IN_FLIGHT``
        batches before it are still short of their first verifications."""
        while in_flight and in_flight[0].task.done():
            in_flight.popleft().task.result()  # raises what a finished batch raised
        waiting = [p for p in in_flight if not p.verified.is_set()]
        if len(waiting) >= _IN_FLIGHT:
            await waiting[0].verifications_done()
        previous = in_flight[-1] if in_flight else None
        after = previous.cut.ordinal if previous is not None else ctx.run.checkpoint
        verified, firsts_written = asyncio.Event(), asyncio.Event()
        buffer = StepBuffer(firsts_written=firsts_written)
        task = asyncio.create_task(self._batch(ctx, batch, cut, after, previous, buffer, verified))
        in_flight.append(_InFlight(verified, task, cut, firsts_written))

    async def _batch(
        self,
        ctx: RunContext,
        batch: Batch,
        cut: _Cut,
        after: int,
        previous: _InFlight | None,
        buffer: StepBuffer,
        verified: asyncio.Event,
    ) -> None:
        """One batch: matched and looked up once the previous batch's first verifications
        are done, verified and streamed to the store step by step, then (after the previous
        batch's checkpoint) checkpointed with its corpus digests and counters."""
        if previous is not None:
            await previous.verifications_done()
        prepared = await self._evaluator.prepare(batch, ctx.run.feeds_corpus, ctx.verdicts)
        del batch  # its records: what is left to do needs the matches only
        earlier = previous.firsts_written if previous is not None else None
        last = Step()  # what commits with the checkpoint
        try:
            if ctx.run.resumed and prepared.groups:
                async with self._engine.connect() as conn:
                    buffer.skip_written(
                        await ingest_queries.written_sightings(
                            conn, ctx.run.id, after=after, up_to=cut.ordinal
                        )
                    )
            stream = BatchStream(
                prepared,
                buffer,
                verifier=self._verifier,
                tweaks=ctx.tweaks,
                run_verdicts=ctx.verdicts,
            )
            if not prepared.todo:
                await stream.verify()  # no verification to run: every group is decided now
                verified.set()
            if verified.is_set() and not stream.checking_tweaks():
                # Nothing more will come: all of it commits with the checkpoint, in one
                # transaction (a batch of known verdicts costs one write, not a stream).
                buffer.first_pass_done()
                buffer.close()
                last = buffer.drain()
            else:
                await self._stream(ctx, stream, buffer, verified, earlier)
            if previous is not None:
                await previous.task  # checkpoints move in batch order
            corpus = await prepared.staged_corpus()
            await self._write(ctx, last, cut=cut, counts=prepared.counts, corpus=corpus)
            buffer.committed(last)
        except BaseException:
            buffer.abandon()  # the next batch must not wait for what will not be written
            prepared.drop_corpus()
            raise
        lines_before = self._committed_lines.get(ctx.run.id, 0)
        self._committed_lines[ctx.run.id] = cut.reading.lines
        INGEST_LINES.inc(cut.reading.lines - lines_before)
        INGEST_RECORDS.inc(prepared.records)

    async def _stream(
        self,
        ctx: RunContext,
        stream: BatchStream,
        buffer: StepBuffer,
        verified: asyncio.Event,
        earlier: asyncio.Event | None,
    ) -> None:
        """Verify the batch (unless it was decided at once) and check its tweaks, while
        :meth:`_flush` commits the decisions step by step as they come."""
        flushing = asyncio.create_task(self._flush(ctx, buffer, after=earlier))
        try:
            if not verified.is_set():
                await stream.verify()
                verified.set()
            if earlier is not None:
                await earlier.wait()
            buffer.first_pass_done()
            await stream.check_tweaks()
            buffer.close()
            await flushing
        except BaseException:
            flushing.cancel()
            await asyncio.gather(flushing, return_exceptions=True)
            raise

    async def _flush(
        self, ctx: RunContext, buffer: StepBuffer, *, after: asyncio.Event | None
    ) -> None:
        """Write the batch's decisions a step at a time, as they come (while one step
        commits, the next gathers what arrives meanwhile), none before ``after`` (the
        previous batch's first decisions are committed)."""
        while (step := await buffer.next_step()) is not None:
            if after is not None:
                await after.wait()
            await self._write(ctx, step)
            buffer.committed(step)

    async def _write(
        self,
        ctx: RunContext,
        step: Step,
        *,
        cut: _Cut | None = None,
        counts: RunStats | None = None,
        corpus: list[corpus_store.PendingRow] | None = None,
    ) -> None:
        """Write ``step`` in ONE transaction that saves the run's checkpoint: at ``cut`` (a
        batch whose every verification is done; the run's last batch also runs the
        context's ``finalize``), or where it stood."""
        async with ctx.writing:
            mark = cut or ctx.committed
            events_before = ctx.outcome.events
            async with self._engine.begin() as conn:
                await ingest_queries.record_checks(conn, step.verdicts)
                await ingest_queries.record_tweak_checks(
                    conn, step.tweak_verdicts, ctx.tweaks.guesses
                )
                await corpus_store.stage_rows(conn, corpus or [])
                if counts is not None:
                    ctx.outcome.add_outcome(counts)
                await write_observations(
                    conn,
                    step.observations,
                    run_id=ctx.run.id,
                    source=ctx.source,
                    now=utcnow(),
                    outcome=ctx.outcome,
                    reading=mark.reading,
                    ordinal=mark.ordinal,
                    done=cut is not None and cut.last,
                )
                if cut is not None and cut.last and ctx.finalize is not None:
                    await ctx.finalize(conn)
            if cut is not None:
                ctx.committed = cut
        if ctx.outcome.events > events_before and self._on_events is not None:
            self._on_events()
