"""Read a dump (file, folder or archive) into one ordered stream of events.

This is the single entry point of :mod:`exposure.dumps` for the ingestion pipeline::

    for event in read_dump(path, is_broker_site=settings.is_broker_site):
        ...

Each member is decoded (:mod:`~exposure.dumps.decode`), its format detected from its name and
first lines (or forced), and its lines parsed (:mod:`~exposure.dumps.formats`). Events, for
the same input always in the same order (the pipeline checkpoints by event ordinal):

* ``MemberStart`` - records and rejections - ``MemberEnd`` for each member read. A member
  that fails mid-way (a truncated or corrupt stream, a bomb) yields every line read before
  the failure, then a ``MemberProblem`` just before its ``MemberEnd``, whose ``problem``
  names the failure too (and a warning is logged). With the native fast path built, the
  plain lines of a combo or URL list come packed a block at a time as one
  :class:`~exposure.dumps.fastpath.RecordBlock` (one event per record it holds).
* A lone ``MemberProblem`` for a member or container that could not be read at all: the
  reasons of :mod:`~exposure.dumps.containers`, plus ``empty`` and ``unrecognised_format``.
* A ``MemberSkipped`` for a file deliberately not read: inside a stealer-log tree
  (:mod:`~exposure.dumps.trees`), every file but the password and cookie files, with the
  reason ``not_credentials``.

Stealer logs: a session cookie for a broker site is an exposure without a password. Its
``CookieHit`` is attributed to every login of the same infected machine (its tree's root, or
else its folder: see :func:`machine_folder`) once the walk leaves that machine, as a synthetic
member of format ``stealer_session`` named after the folder, holding one ``LeakRecord(login, None,
SESSION_COOKIE, line_no=<first cookie line>, site=<cookie site>)`` per (login, site) pair.
Broker cookies that find no login are counted there as ``cookie_unattributed``; cookies for
other sites are counted in their own member as ``cookie_not_broker``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, cast

from exposure.dumps import fastpath
from exposure.dumps.containers import (
    ArchiveLimits,
    Member,
    MemberError,
    MemberProblem,
    _sniff,
    iter_members,
)
from exposure.dumps.decode import DEFAULT_MAX_LINE_BYTES, LineProblem, decode_lines
from exposure.dumps.fastpath import RecordBlock, iter_blocks
from exposure.dumps.formats import FORMATS, Parsed, detect_format, parse_lines
from exposure.dumps.records import CookieHit, LeakRecord, LeakType, Rejected
from exposure.dumps.trees import COOKIES, TreeIndex, member_role

__all__ = [
    "RANGE_FORMATS",
    "SESSION_FORMAT",
    "DumpEvent",
    "MemberEnd",
    "MemberProblem",
    "MemberSkipped",
    "MemberStart",
    "is_container",
    "machine_folder",
    "range_format",
    "read_dump",
    "read_range",
]

log = logging.getLogger("exposure")

SESSION_FORMAT = "stealer_session"
DEFAULT_LIMITS = ArchiveLimits()
# Format detection sees the first lines of a member, bounded in count and in size.
_HEAD_LINES = 50
_HEAD_CHARS = 64 << 10
# More distinct logins than one infected browser plausibly holds: the "folder" is not one
# machine (a merged dump), and pinning its cookies on every login would accuse strangers.
_MAX_MACHINE_LOGINS = 2000
_SUBFOLDERS = frozenset(("cookies", "passwords", "autofills", "autofill", "browsers"))
# Formats in which every line is a unit of its own, so any line-aligned byte range parses
# exactly as it would inside the whole file. Not csv (its header is on line 1), sql (statements
# span lines), stealer formats (blocks span lines; cookies are attributed per machine folder).
RANGE_FORMATS = frozenset(("combo", "ulp", "jsonl"))
_ARCHIVE_SUFFIXES = re.compile(r"(\.(zip|7z|rar|tar|tgz|gz|bz2|xz|zst))+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MemberStart:
    """A member's records follow. ``encoding`` is what decoding found so far (final at the end)."""

    name: str
    format: str
    encoding: str | None


@dataclass(frozen=True, slots=True)
class MemberEnd:
    """A member is done. ``lines`` decoded, ``records`` yielded, ``rejected`` counts by reason
    (every rejection of the member, including decoder ones); ``broker_cookies``: session cookies
    for broker sites seen here, attributed in the folder's ``stealer_session`` member (whose
    own ``encoding`` is ``""``: it decodes nothing)."""

    name: str
    format: str
    encoding: str
    lines: int
    records: int
    rejected: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    broker_cookies: int = 0
    problem: str | None = None  # why the member ended early (``truncated``, ...), if it did


@dataclass(frozen=True, slots=True)
class MemberSkipped:
    """A file deliberately not read, and why (``not_credentials``: a stealer-log file that
    holds no credentials, such as ``ImportantAutofills.txt`` or ``keychain.txt``)."""

    name: str
    reason: str


DumpEvent = (
    MemberStart | LeakRecord | RecordBlock | Rejected | MemberEnd | MemberProblem | MemberSkipped
)


def machine_folder(member_name: str) -> str:
    """The infected-machine folder of a stealer-log member, as a name prefix.

    The member's folder, less trailing stealer sub-folders (``Cookies``, ``Passwords``,
    ``Browsers``, ``Autofills``, also as nested archives such as ``Cookies.zip``):
    ``logs.zip!JP[ABC] [2025-04-01]/Cookies/Chrome.txt`` and ``.../Passwords.txt`` both give
    ``logs.zip!JP[ABC] [2025-04-01]/``; a log archived per machine gives ``JP[ABC].zip!``.
    """
    parts = re.split(r"([!/])", member_name)
    folders, separators = parts[0:-1:2], parts[1::2]
    keep = len(folders)
    while keep and _ARCHIVE_SUFFIXES.sub("", folders[keep - 1]).lower() in _SUBFOLDERS:
        keep -= 1
    return "".join(f + s for f, s in zip(folders[:keep], separators[:keep], strict=True))


@dataclass(slots=True)
class _Machine:
    """What one infected-machine folder has shown so far (plaintext logins: memory only)."""

    key: str
    logins: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    cookies: dict[str, int] = field(default_factory=dict)  # broker site -> first line
    hits: int = 0
    crowded: bool = False

    def add_login(self, login: str) -> None:
        if login and not self.crowded and login not in self.logins:
            self.crowded = len(self.logins) >= _MAX_MACHINE_LOGINS
            if not self.crowded:
                self.logins[login] = None

    def session_events(self) -> Iterator[DumpEvent]:
        """The folder's ``stealer_session`` member: one record per (login, broker site)."""
        name = self.key or "./"
        yield MemberStart(name, SESSION_FORMAT, None)
        records, rejected = 0, {}
        if self.crowded:
            rejected["cookie_folder_too_large"] = self.hits
        elif not self.logins:
            rejected["cookie_unattributed"] = self.hits
        else:
            for site, line_no in self.cookies.items():
                for login in self.logins:
                    yield LeakRecord(login, None, LeakType.SESSION_COOKIE, line_no, site=site)
                    records += 1
        yield MemberEnd(name, SESSION_FORMAT, "", 0, records, MappingProxyType(rejected))


class _Reader:
    def __init__(
        self,
        fmt: str | None,
        is_broker_site: Callable[[str], bool],
        limits: ArchiveLimits,
        progress: Callable[[int], None] | None,
        max_line_bytes: int,
    ) -> None:
        self._fmt, self._is_broker_site, self._limits = fmt, is_broker_site, limits
        self._progress, self._max_line_bytes = progress, max_line_bytes
        self._machine: _Machine | None = None
        self._trees = TreeIndex()

    def events(self, path: Path) -> Iterator[DumpEvent]:
        for item in iter_members(path, self._limits, on_listing=self._trees.add_listing):
            root = self._trees.root_of(item.name)
            key = machine_folder(item.name) if root is None else root
            if self._machine is not None and self._machine.key != key:
                yield from self._leave_machine()
            if isinstance(item, MemberProblem):
                yield item
            elif root is None:
                yield from self._member(item, key)
            elif (role := member_role(item.name[len(root) :])) is None:
                yield MemberSkipped(item.name, "not_credentials")
            else:
                yield from self._member(item, key, role)
        yield from self._leave_machine()

    def range_events(self, handle: BinaryIO, size: int, name: str) -> Iterator[DumpEvent]:
        with handle:
            stream = cast(BinaryIO, _RangeStream(handle, size))
            yield from self._member(Member(name, size, lambda: nullcontext(stream)), "")
            yield from self._leave_machine()

    def _leave_machine(self) -> Iterator[DumpEvent]:
        machine, self._machine = self._machine, None
        if machine is not None and machine.hits:
            yield from machine.session_events()

    def _machine_for(self, key: str) -> _Machine:
        if self._machine is None:
            self._machine = _Machine(key)
        return self._machine

    def _member(self, member: Member, key: str, role: str | None = None) -> Iterator[DumpEvent]:
        """The events of one member; ``role``: what it holds in a stealer-log tree (password
        or cookie file), which bounds the formats it may be read as."""
        name, fmt = member.name, self._fmt
        rejected: Counter[str] = Counter()
        pending: list[Rejected] = []  # decoder problems, emitted in line order
        records = broker_cookies = 0
        started = False
        failure: MemberError | None = None

        def on_problem(line_no: int, problem: LineProblem) -> None:
            pending.append(Rejected(line_no, problem.value))

        try:
            with member.open() as stream:
                lines = decode_lines(
                    stream, max_line_bytes=self._max_line_bytes, on_read=self._progress
                )
                texts = lines.texts(on_problem)
                head = _head(texts)
                if not head and not pending:
                    yield MemberProblem(name, lines.error.reason if lines.error else "empty")
                    return
                fmt = fmt or detect_format(name, [text for _, text in head])
                if fmt is None or (
                    role is not None and (fmt == "stealer_cookies") != (role == COOKIES)
                ):
                    yield MemberProblem(name, "unrecognised_format")
                    return
                yield MemberStart(name, fmt, lines.encoding)
                started = True
                parsed: Iterator[Parsed | RecordBlock]
                if fmt in fastpath.FORMATS and fastpath.AVAILABLE:
                    lines.text_blocks = True  # the head is parsed line by line already
                    parsed = iter_blocks(fmt, chain(head, texts))
                else:
                    parsed = parse_lines(fmt, chain(head, texts), member_name=name)
                for item in parsed:
                    if pending:  # the lines behind them were read before this item was made
                        yield from _drain(pending, rejected)
                    if isinstance(item, RecordBlock):
                        records += item.count
                        yield item
                    elif isinstance(item, LeakRecord):
                        records += 1
                        if fmt == "stealer_passwords":
                            self._machine_for(key).add_login(item.login)
                        yield item
                    elif isinstance(item, CookieHit):
                        if self._is_broker_site(item.site):
                            machine = self._machine_for(key)
                            machine.cookies.setdefault(item.site, item.line_no)
                            machine.hits += 1
                            broker_cookies += 1
                        else:
                            rejected["cookie_not_broker"] += 1
                    else:
                        rejected[item.reason] += 1
                        yield item
                yield from _drain(pending, rejected)
                failure = lines.error
        except MemberError as exc:
            yield from _drain(pending, rejected)
            failure = exc
        if failure is not None:
            log.warning("dump member %s ended early: %s", name, failure.reason)
            yield MemberProblem(name, failure.reason)
        if started and fmt is not None:
            counts = MappingProxyType(dict(rejected))
            yield MemberEnd(
                name,
                fmt,
                lines.encoding,
                lines.lines,
                records,
                counts,
                broker_cookies,
                None if failure is None else failure.reason,
            )


def _head(texts: Iterator[tuple[int, str]]) -> list[tuple[int, str]]:
    head: list[tuple[int, str]] = []
    size = 0
    for item in texts:
        head.append(item)
        size += len(item[1])
        if len(head) >= _HEAD_LINES or size >= _HEAD_CHARS:
            break
    return head


def _drain(pending: list[Rejected], rejected: Counter[str]) -> Iterator[Rejected]:
    for item in pending:
        rejected[item.reason] += 1
        yield item
    pending.clear()


def read_dump(
    path: Path,
    *,
    format_override: str | None = None,
    is_broker_site: Callable[[str], bool],
    limits: ArchiveLimits = DEFAULT_LIMITS,
    progress: Callable[[int], None] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[DumpEvent]:
    """Stream every event of the dump at ``path`` (see the module docstring).

    ``format_override`` forces one of :data:`~exposure.dumps.formats.FORMATS` for every
    member (checked now: :class:`ValueError` if unknown). ``is_broker_site(site)`` tells
    broker domains for cookie attribution. ``progress(n)`` is called with each increment of
    member bytes read (decompressed). Nothing here raises for bad input: problems are events.
    """
    if format_override is not None and format_override not in FORMATS:
        raise ValueError(f"unknown dump format {format_override!r}; expected one of {FORMATS}")
    reader = _Reader(format_override, is_broker_site, limits, progress, max_line_bytes)
    return reader.events(path)


class _RangeStream:
    """At most ``remaining`` bytes of ``handle`` from where it is positioned (a byte range)."""

    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self._handle, self._remaining = handle, remaining

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size < 0 else min(size, self._remaining)
        data = self._handle.read(want)
        self._remaining -= len(data)
        return data


def is_container(head: bytes, name: str) -> bool:
    """Whether the container walk would treat a file of this name starting with ``head`` (its
    first 4 KiB or more) as an archive or compressed stream, or refuse it as one."""
    return _sniff(head, name) is not None


def range_format(path: Path) -> str | None:
    """The format to read the plain file at ``path`` in byte ranges, or ``None`` when it must
    be read whole: a container or compressed file (the magic bytes the container walk uses),
    UTF-16 text (its line breaks are two bytes wide), an undetected format, or a format outside
    :data:`RANGE_FORMATS`. Detection sees the same head of the file as :func:`read_dump`.
    Raises :class:`OSError` when the file cannot be read.
    """
    with path.open("rb") as handle:
        if is_container(handle.read(4096), path.name):
            return None
        handle.seek(0)
        lines = decode_lines(handle)
        if lines.encoding.startswith("utf-16"):
            return None
        head = _head(lines.texts(lambda _line_no, _problem: None))
    fmt = detect_format(path.name, [text for _, text in head])
    return fmt if fmt in RANGE_FORMATS else None


def read_range(
    path: Path,
    start: int,
    end: int,
    *,
    fmt: str,
    name: str,
    is_broker_site: Callable[[str], bool],
    progress: Callable[[int], None] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[DumpEvent]:
    """Stream the events of bytes ``start`` to ``end`` (inclusive) of the plain file at ``path``
    as one member called ``name``, parsed as ``fmt`` (one of :data:`RANGE_FORMATS`).

    Line numbers count from the range's first line. The file is opened now, so a missing or
    unreadable file raises :class:`OSError` here rather than becoming a problem event: a range
    that could not be read must not count as read.
    """
    if fmt not in RANGE_FORMATS:
        raise ValueError(f"{fmt!r} cannot be read by byte ranges; expected one of {RANGE_FORMATS}")
    handle = path.open("rb")
    try:
        handle.seek(start)
    except OSError:
        handle.close()
        raise
    reader = _Reader(fmt, is_broker_site, DEFAULT_LIMITS, progress, max_line_bytes)
    return reader.range_events(handle, end - start + 1, name)
