"""Preparing one batch: match its records against the enrolled customers and look up what
their verification needs. Nothing here writes or verifies: :mod:`exposure.ingest.streaming`
verifies a prepared batch and decides each group as its verdict comes, and the orchestrator
(:mod:`exposure.ingest.pipeline`) commits the decisions.

Plain lines come as blocks packed by the native fast path (:mod:`exposure.dumps.fastpath`);
their match against the in-memory index starts on the matching threads as soon as they are
read (:meth:`BatchEvaluator.match_block`), and only records that may match come back as
ordinary records. Every record that may match is then fingerprinted and confirmed against the
full fingerprints in the store; the matches are gathered into one :class:`Group` per exposure
key, each needing at most one verdict (each (customer, password, enrolled hash) is verified
once ever), with the verdicts already known and the pairs still to verify, most urgent first.
:meth:`Group.observe` turns a group into the
:class:`~exposure.domain.lifecycle.Observation` the policy decides.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.domain.fingerprints import password_fingerprint
from exposure.domain.lifecycle import ExposureKey, Observation, SightingAt
from exposure.domain.policy import MatchStrength, PasswordStatus, decide
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.records import LeakRecord, LeakType
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
from exposure.store import index_file
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
    """The enrolled index: mapped from the file saved for the store's current generation
    (:mod:`exposure.store.index_file`), or built from the store's fingerprint prefixes and
    saved for the next ingest."""
    folder = index_file.folder_of(engine)
    saved = None
    async with engine.connect() as conn:
        # The generation before the fingerprints: what is saved under it then holds at least
        # the identifiers it names.
        generation = None if folder is None else await index_file.generation(conn)
        if folder is not None and generation is not None:
            saved = index_file.load(folder, generation)
        if saved is None:
            joined = await ingest_queries.fingerprint_prefixes(conn, PREFIX_BYTES)
    if saved is not None:
        index = EnrolledIndex(saved)
    else:
        index = EnrolledIndex.from_prefixes(joined)
        if folder is not None and generation is not None:
            await asyncio.to_thread(index_file.save, folder, generation, index.prefixes)
    log.info(
        "enrolled index: %d fingerprints, %d KiB, %s",
        len(index),
        index.nbytes // 1024,
        "mapped from its file" if saved is not None else "built from the store",
    )
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


@dataclass(frozen=True, slots=True)
class _Contribution:
    """One record's part in a group: what it adds to the decision, and where it was seen."""

    strength: str
    hint: str
    leak_type: LeakType
    has_pin: bool
    sighting: SightingAt


@dataclass(slots=True)
class Group:
    """One exposure key's records in a batch. Its password status needs at most one verdict,
    ``check``'s (the records of one key share the customer and the leaked password); until
    then it waits (:mod:`exposure.ingest.streaming`)."""

    key: ExposureKey
    check: CheckKey | None
    broker_site: bool
    enrolled_hash: str | None = field(repr=False)
    leaked: str | None = field(repr=False)  # the leaked value as read (may be a hash or empty)
    contributions: list[_Contribution] = field(default_factory=list)

    def status(self, verified: bool | None, tweaked: bool | None = None) -> PasswordStatus:
        """The contract's status given the check's verdict (None: no check applies) and,
        for a stale password, whether a tweak of it verified."""
        status = password_status(self.enrolled_hash, self.leaked, verified)
        if status is PasswordStatus.STALE and tweaked:
            return PasswordStatus.TWEAKED
        return status

    def observe(self, status: PasswordStatus) -> Observation:
        """One observation: the strongest decision among the records, every sighting."""
        best: Observation | None = None
        places = []
        for part in self.contributions:  # at least one: a group starts with its first record
            decision = decide(
                password_status=status,
                broker_site=self.broker_site,
                strength=MatchStrength(part.strength),
                leak_type=part.leak_type,
                has_pin=part.has_pin,
            )
            candidate = Observation(
                self.key,
                part.strength,
                status.value,
                decision,
                part.leak_type.value,
                part.has_pin,
                part.hint,
            )
            if best is None or candidate.rank() > best.rank():
                best = candidate
            places.append(part.sighting)
        if best is None:
            raise ValueError("a group without records")
        best.sightings = places
        return best


@dataclass(slots=True)
class Prepared:
    """A batch matched and looked up, its verifications not yet run: what
    :mod:`exposure.ingest.streaming` turns into observations as verdicts come."""

    groups: list[Group] = field(default_factory=list)
    # Verdicts recorded before (in the store, or earlier in this run).
    known: dict[CheckKey, bool] = field(default_factory=dict)
    # Pairs to verify, most urgent first (broker-site leaks, then in reading order):
    # (enrolled hash, leaked password).
    todo: dict[CheckKey, tuple[str, str]] = field(default_factory=dict, repr=False)
    # Every check's (enrolled hash, leaked password), for tweaks of a stale one; and whether
    # a broker-site leak needs it (those are tweak-checked first).
    secrets: dict[CheckKey, tuple[str, str]] = field(default_factory=dict, repr=False)
    broker_checks: set[CheckKey] = field(default_factory=set)
    tweaks_known: dict[CheckKey, bool] = field(default_factory=dict)
    # The SHA-1 digests of the batch's usable passwords, as the rows to stage: their spool
    # files are written and synced on a worker thread meanwhile (:meth:`staged_corpus`).
    corpus: asyncio.Future[list[corpus_store.PendingRow]] | None = None
    counts: RunStats = field(default_factory=RunStats)  # its outcome counters so far
    records: int = 0

    async def staged_corpus(self) -> list[corpus_store.PendingRow]:
        """The corpus rows to stage, once their spool files are on disk."""
        return [] if self.corpus is None else await self.corpus

    def drop_corpus(self) -> None:
        """Forget the corpus rows of a batch that will not commit (a spool file already
        written is an orphan the fold's sweep removes, as after a killed run)."""
        if self.corpus is not None:
            self.corpus.cancel()
            self.corpus.add_done_callback(_retrieved)


class BatchEvaluator:
    """Matches and looks up batches with one pepper, one enrolled index and one password
    verifier (used by :mod:`exposure.ingest.streaming` to verify what :meth:`prepare` found).

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
        self.verifier = verifier
        self.tweak_guesses = settings.tweak_guesses
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

    async def prepare(
        self, batch: Batch, feeds_corpus: bool, earlier: Mapping[CheckKey, bool]
    ) -> Prepared:
        """Match and look up, outside any transaction: the batch's groups by exposure key,
        the verdicts known (``earlier``: this run's, committed or not; then the store's) and
        the pairs still to verify, most urgent first."""
        prepared = Prepared(records=len(batch.records))
        corpus: list[bytes] = []  # joined once: a batch's digests run to megabytes
        if batch.blocks:
            prepared.records += sum(block.count for _, _, block, _ in batch.blocks)
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
        if corpus:
            # Spooled while the batch is matched, verified and decided: a slow sync of its
            # files (seen to take 0.5 s on a VM's disk) then delays its commit at most, not
            # the reading and matching of what follows.
            prepared.corpus = asyncio.ensure_future(
                asyncio.to_thread(corpus_store.pending_rows, b"".join(corpus), self._spool)
            )
        try:
            await self._match(prepared, batch, usable, earlier)
        except BaseException:
            prepared.drop_corpus()
            raise
        return prepared

    async def _match(
        self,
        prepared: Prepared,
        batch: Batch,
        usable: list[str | None],
        earlier: Mapping[CheckKey, bool],
    ) -> None:
        """Match the batch's records, and look up what their verification needs."""
        records = batch.records
        if not records:
            return
        counts = prepared.counts
        keys, readable = candidate_keys(
            await self.enrolled(), self._fingerprinter, [r.login for r in records]
        )
        counts.without_identifier += len(records) - readable
        if not keys:
            return
        async with self._engine.connect() as conn:
            enrolled = await ingest_queries.lookup_identifiers(conn, [k.fingerprint for k in keys])
            matches = _confirmed(keys, enrolled)
            hashes = await ingest_queries.password_hashes(conn, {m[1].customer_id for m in matches})
            prepared.groups = self._groups(batch, matches, usable, hashes)
            wanted = {g.check for g in prepared.groups if g.check is not None}
            unseen = wanted - earlier.keys()
            prepared.known = await ingest_queries.known_checks(conn, unseen)
            prepared.known.update((key, earlier[key]) for key in wanted - unseen)
            if self.tweak_guesses:
                stale = [key for key in wanted if not prepared.known.get(key, False)]
                prepared.tweaks_known = await ingest_queries.known_tweak_checks(
                    conn, stale, self.tweak_guesses
                )
        self._plan(prepared)
        counts.cached_verdicts += len(prepared.known)
        counts.matched_records += len({position for position, _ in matches})

    def _groups(
        self,
        batch: Batch,
        matches: list[tuple[int, EnrolledMatch]],
        usable: list[str | None],
        hashes: dict[str, str | None],
    ) -> list[Group]:
        """The matches gathered by exposure key, each with the check its status needs."""
        groups: dict[ExposureKey, Group] = {}
        domains = self._broker_domains
        for position, match in matches:
            record = batch.records[position]
            password, phc = usable[position], hashes.get(match.customer_id)
            fingerprint = password_fingerprint(self._pepper, password) if password else b""
            key = ExposureKey(match.customer_id, match.kind, fingerprint, record.site or "")
            group = groups.get(key)
            if group is None:
                check = None
                if password is not None and phc is not None and is_verifiable(phc):
                    check = (match.customer_id, fingerprint, hash_key(phc))
                group = groups[key] = Group(
                    key, check, domains.matches(record.site), phc, record.password
                )
            ordinal, member = batch.places[position]
            group.contributions.append(
                _Contribution(
                    match.strength,
                    match.hint,
                    record.leak_type,
                    record.has_pin,
                    SightingAt(ordinal, member, record.line_no, record.leak_type.value),
                )
            )
        return list(groups.values())

    @staticmethod
    def _plan(prepared: Prepared) -> None:
        """The pairs to verify, each once, broker-site leaks first (a stable sort keeps the
        reading order within each)."""
        checked = sorted(
            (g for g in prepared.groups if g.check is not None), key=lambda g: not g.broker_site
        )
        for group in checked:
            check, enrolled_hash, leaked = group.check, group.enrolled_hash, group.leaked
            if check is None or enrolled_hash is None or leaked is None:
                continue  # (not checked: filtered above)
            prepared.secrets.setdefault(check, (enrolled_hash, leaked))
            if group.broker_site:
                prepared.broker_checks.add(check)
            if check not in prepared.known:
                prepared.todo.setdefault(check, (enrolled_hash, leaked))


def _retrieved(future: asyncio.Future[list[corpus_store.PendingRow]]) -> None:
    """Take a dropped spooling's outcome, so that its failure is not reported as unseen."""
    if not future.cancelled():
        future.exception()


def hash_key(enrolled_hash: str) -> bytes:
    """What identifies an enrolled hash in ``password_checks`` and ``tweak_checks``."""
    return hashlib.sha256(enrolled_hash.encode()).digest()[:16]


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
