"""Evaluating one batch: match its records against the enrolled customers, verify the leaked
passwords of the matches, and decide. Nothing here writes: the orchestrator
(:mod:`exposure.ingest.pipeline`) commits what an evaluation found.

Plain lines come as blocks packed by the native fast path (:mod:`exposure.dumps.fastpath`);
their match against the in-memory index starts on the matching threads as soon as they are
read (:meth:`BatchEvaluator.match_block`), and only records that may match come back as
ordinary records. Every record that may match is then fingerprinted, confirmed against the
full fingerprints in the store, verified (argon2, each (customer, password, enrolled hash)
once ever, on every core) and decided by the policy, giving one
:class:`~exposure.domain.lifecycle.Observation` per exposure key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.domain.fingerprints import password_fingerprint
from exposure.domain.lifecycle import ExposureKey, Observation, SightingAt
from exposure.domain.policy import MatchStrength, decide
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.records import LeakRecord
from exposure.ingest.matching import (
    PREFIX_BYTES,
    EnrolledIndex,
    Fingerprinter,
    LeakedKey,
    candidate_keys,
)
from exposure.ingest.stats import RunStats
from exposure.passwords.verifier import (
    PasswordVerifier,
    is_verifiable,
    looks_like_hash,
    password_status,
)
from exposure.settings import Settings
from exposure.store import corpus as corpus_store
from exposure.store import ingest as ingest_queries
from exposure.store.ingest import CheckKey, EnrolledMatch

log = logging.getLogger("exposure")

BlockMatch = asyncio.Future[tuple[list[int], bytes]]


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


_matchers: ThreadPoolExecutor | None = None


def matchers() -> ThreadPoolExecutor:
    """The native matching threads, one per core (the C code releases the GIL), started on
    first use; :func:`shutdown_matchers` (the runtime, as it closes) stops them."""
    global _matchers
    if _matchers is None:
        _matchers = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1,
            thread_name_prefix="match",
            initializer=_yield_to_the_pipeline,
        )
    return _matchers


def shutdown_matchers() -> None:
    """Stop the matching threads if they were started; a later ingest starts new ones."""
    global _matchers
    pool, _matchers = _matchers, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


async def load_index(engine: AsyncEngine) -> EnrolledIndex:
    """The enrolled index, from the store's fingerprint prefixes."""
    async with engine.connect() as conn:
        joined = await ingest_queries.fingerprint_prefixes(conn, PREFIX_BYTES)
    index = EnrolledIndex.from_prefixes(joined)
    log.info("enrolled index: %d fingerprints, %d KiB", len(index), index.nbytes // 1024)
    return index


@dataclass(slots=True)
class Batch:
    """Records gathered for one transaction, with where each was read."""

    records: list[LeakRecord] = field(default_factory=list)
    places: list[tuple[int, str]] = field(default_factory=list)  # (ordinal, member name)
    # Records still packed by the native fast path: (ordinal of the first, member, block, and
    # the block's match running on a worker thread).
    blocks: list[tuple[int, str, RecordBlock, BlockMatch]] = field(default_factory=list)

    def add(self, ordinal: int, member: str, record: LeakRecord) -> None:
        self.records.append(record)
        self.places.append((ordinal, member))


@dataclass(slots=True)
class Evaluation:
    """A batch matched, verified and decided: what its transaction writes."""

    observations: list[Observation] = field(default_factory=list)
    verdicts: dict[CheckKey, bool] = field(default_factory=dict)
    # The SHA-1 digests of the batch's usable passwords, as rows to stage (spooled already).
    corpus: list[corpus_store.PendingRow] = field(default_factory=list)
    counts: RunStats = field(default_factory=RunStats)  # its outcome counters
    records: int = 0


class BatchEvaluator:
    """Matches, verifies and decides batches with one pepper, one enrolled index and one
    password verifier.

    ``index=None`` loads the enrolled index when the first batch needs it (or when
    :meth:`prefetch_index` asks): a scheduled connector run that finds nothing new then costs
    no index load.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        index: EnrolledIndex | None,
        verifier: PasswordVerifier,
    ) -> None:
        self._engine = engine
        self._index = index
        self._index_loading: asyncio.Task[EnrolledIndex] | None = None
        self._verifier = verifier
        self._broker_domains = settings.broker_domains
        self._pepper = settings.pepper.reveal()
        self._spool = corpus_store.spool_of(engine)
        self._fingerprinter = Fingerprinter(
            self._pepper,
            login_id_case_sensitive=settings.login_id_case_sensitive,
            phone_region=settings.phone_region,
        )

    def prefetch_index(self) -> None:
        """Start loading the enrolled index now (an input is about to be read)."""
        if self._index is None:
            self._index_task()

    def _index_task(self) -> asyncio.Task[EnrolledIndex]:
        if self._index_loading is None:
            self._index_loading = asyncio.create_task(load_index(self._engine))
        return self._index_loading

    async def enrolled(self) -> EnrolledIndex:
        """The enrolled index, loaded on first need (or already loading)."""
        if self._index is None:
            try:
                self._index = await self._index_task()
            except Exception:
                self._index_loading = None  # the next batch tries again
                raise
        return self._index

    async def match_block(self, block: RecordBlock, feeds_corpus: bool) -> BlockMatch:
        """Start the native match of a block on a matching thread (it releases the GIL), so
        that every core matches while the caller goes on reading."""
        table = (await self.enrolled()).lookup_table()
        return asyncio.wrap_future(
            matchers().submit(block.match, self._pepper, table, feeds_corpus)
        )

    async def evaluate(
        self, batch: Batch, feeds_corpus: bool, *, after: asyncio.Task[Evaluation] | None
    ) -> Evaluation:
        """Match, verify and decide, outside any transaction, after the previous batch's
        evaluation: its verdicts may not be committed yet, and a pair is verified once."""
        earlier = (await after).verdicts if after is not None else {}
        evaluation = Evaluation(records=len(batch.records))
        corpus: list[bytes] = []  # joined once: a batch's digests run to megabytes
        if batch.blocks:
            evaluation.records += sum(block.count for _, _, block, _ in batch.blocks)
            await _unpack_blocks(batch, corpus)
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
            await self.enrolled(), self._fingerprinter, [r.login for r in records]
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
        batch: Batch,
        matches: list[tuple[int, EnrolledMatch]],
        usable: list[str | None],
        hashes: dict[str, str | None],
        wanted: dict[tuple[int, str], CheckKey],
        verdict_of: dict[CheckKey, bool],
    ) -> list[Observation]:
        """One observation per exposure key: the strongest evidence among the batch's
        records for it, with every place it was seen."""
        observations: dict[ExposureKey, Observation] = {}
        domains = self._broker_domains
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


async def _unpack_blocks(batch: Batch, corpus: list[bytes]) -> None:
    """Take the native fast path's verdicts: records that cannot match only add their
    passwords to the corpus; the others join the batch's records for the Python path."""
    for first, member, block, matching in batch.blocks:
        positions, digests = await matching
        for position in positions:
            batch.add(first + position, member, block.record(position))
        corpus.append(digests)


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
