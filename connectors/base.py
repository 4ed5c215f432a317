"""The connector protocol: what a feed connector is, what it yields, and how it fails
(docs/architecture.md, "Connectors").

A connector is a small class (see :class:`Connector`) with a stable ``name``, a frozen settings
dataclass read from ``EXPOSURE_<NAME>_*`` variables, a default schedule and ONE async generator,
:meth:`Connector.pages`, that yields :class:`Page` objects, each carrying the cursor that is valid
once that page is stored. The runner (:mod:`exposure.ingest.connector_runner`) stores every page and
its cursor in one transaction; a connector never touches the database and never saves its own state.

Errors say what the runner should do (:mod:`exposure.errors`): ``FatalError`` stops the run
(configuration, credentials), ``RetriableError`` backs off and resumes from the last stored
cursor (network, 429, 5xx: see :mod:`connectors.http`), and one bad item is counted in
:attr:`Page.skipped` and skipped.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import aiohttp

from exposure.domain.broker_sites import BrokerDomains
from exposure.dumps.records import LeakRecord
from exposure.errors import ConfigurationError
from exposure.variables import EnvironSettings
from exposure.variables import Variable as Variable
from exposure.variables import parse_bool as parse_bool
from exposure.variables import parse_choice as parse_choice
from exposure.variables import parse_http_url as parse_http_url
from exposure.variables import parse_positive_float as parse_positive_float
from exposure.variables import parse_positive_int as parse_positive_int
from exposure.variables import parse_secret as parse_secret
from exposure.variables import setting as setting

Cursor = dict[str, Any] | None
"""A connector's bookmark: a JSON object (or ``None``), stored as JSON with the page it covers."""


# -- settings -------------------------------------------------------------------------------
# The grammar is the core's own (:mod:`exposure.variables`), re-exported above: plug-ins
# import `setting`, `Variable` and the parsers from here.


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSettings(EnvironSettings):
    """Base of every connector's settings: a frozen dataclass of :func:`setting` fields, read
    from ``Settings.environ`` with :meth:`~exposure.variables.EnvironSettings.from_environ`."""


# -- schedules ------------------------------------------------------------------------------

_INTERVAL = re.compile(r"every\s+(\d+)\s*([smh])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_CRON_FIELD = re.compile(r"[0-9A-Za-z*,/\-]+")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a connector runs: a 5-field crontab line (``cron``) or ``every <n>s|m|h``."""

    text: str
    cron: str | None = None
    interval_seconds: int | None = None


def parse_schedule(text: str, variable: str = "schedule") -> Schedule:
    """Read ``0 3 * * *`` or ``every 15m``; :class:`ConfigurationError` names ``variable``."""
    stripped = " ".join(text.split())
    interval = _INTERVAL.fullmatch(stripped)
    if interval:
        amount, unit = int(interval.group(1)), interval.group(2).lower()
        if amount <= 0:
            raise ConfigurationError(variable, "the interval must be positive")
        return Schedule(f"every {amount}{unit}", interval_seconds=amount * _UNIT_SECONDS[unit])
    parts = stripped.split(" ")
    if len(parts) == 5 and all(_CRON_FIELD.fullmatch(p) for p in parts):
        return Schedule(stripped, cron=stripped)
    raise ConfigurationError(
        variable, "must be a 5-field crontab line such as '0 3 * * *' or an interval 'every 15m'"
    )


# -- pages ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """What a connector yields. This base class carries only a new cursor (nothing to store).

    ``cursor``: valid once this page is stored; saved in the same transaction as its data.
    ``skipped``: bad items left out of this page, counted by reason code (never their content).
    """

    cursor: Cursor
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordsPage(Page):
    """Leak records, ingested as one input named ``label`` (the sightings' file name).

    The same label and records fetched again after a crash resume the interrupted ingest.
    """

    records: Sequence[LeakRecord]
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesPage(Page):
    """Dumps to ingest whole (each under its own file name); ``format`` skips detection."""

    files: Sequence[Path]
    format: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LargeFilePage(FilesPage):
    """One large plain-text file (``files`` holds it alone), to be ingested by byte ranges.

    The runner splits the file into line-aligned ranges of about ``chunk_bytes`` and records
    them, with ``done_folder``, in the database; every daemon replica then claims ranges and
    ingests them. Whoever ingests the LAST range moves the file into ``done_folder`` with
    :func:`move_into` (``None``: the file stays where it is), so the connector must leave a
    file whose outcome is not yet :attr:`InputOutcome.complete` alone. A file the runner will
    not split (a container, UTF-16, a format that is not line by line) is ingested whole, as a
    :class:`FilesPage`.
    """

    chunk_bytes: int
    done_folder: Path | None = None


def move_into(entry: Path, folder: Path) -> Path | None:
    """Move ``entry`` into ``folder`` (created if need be); a name already there gets a UTC
    timestamp prefix. Returns where it went, or ``None`` when ``entry`` is gone: someone else
    (another replica finishing the same large file) moved it first."""
    if not os.path.lexists(entry):  # a link is moved as the link, even a dangling one
        return None
    folder.mkdir(exist_ok=True)
    target = folder / entry.name
    if os.path.lexists(target):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{stamp}-{entry.name}"
    try:
        os.replace(entry, target)
    except FileNotFoundError:
        return None  # lost the race to another mover
    except OSError:
        shutil.move(entry, target)  # another file system
    return target


@dataclass(frozen=True, slots=True)
class BreachedEmailHash:
    """One entry of HIBP's e-mail range answer: the SHA-1 suffix (34 hex) and breach names."""

    suffix: str
    websites: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailRangePage(Page):
    """HIBP's answer for one 6-hex e-mail SHA-1 prefix. The runner keys prefix + suffix with the
    pepper and matches it against ``email_range_keys``; unmatched hashes are dropped unseen."""

    prefix: str
    hits: Sequence[BreachedEmailHash]


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordRangePage(Page):
    """Pwned Passwords counts ``(sha1 20 bytes, count)`` to merge into the local corpus."""

    counts: Sequence[tuple[bytes, int]]
    prefixes: int = 0  # ranges fetched for this page
    unchanged: int = 0  # ranges answered 304 Not Modified


class InputOutcome(Protocol):
    """What storing one input of a page came to, as a connector may read it."""

    @property
    def records(self) -> int:
        """Leak records read from it (by this call, for a large file's ranges)."""
        ...

    @property
    def problems_total(self) -> int:
        """Members that could not be read at all (corrupt, encrypted, unknown format...)."""
        ...

    @property
    def problem_reasons(self) -> Mapping[str, int]:
        """Those problems counted by reason code (never a line or a name from the input)."""
        ...

    @property
    def complete(self) -> bool:
        """False while ranges of a :class:`LargeFilePage` file still wait for the replicas:
        the file is theirs to move then."""
        ...


@dataclass(frozen=True, slots=True)
class Stored:
    """Sent back into the generator by the runner once a page and its cursor committed: the
    value of the ``yield`` expression. ``ingests`` holds one outcome per input of the page."""

    records: int = 0
    matched: int = 0
    ingests: tuple[InputOutcome, ...] = ()


class ConnectorInputs(Protocol):
    """Read-only inputs the runner provides, so a connector never opens the database itself."""

    @property
    def broker_domains(self) -> BrokerDomains:
        """``EXPOSURE_BROKER_DOMAINS``."""
        ...

    def keyed_digest(self) -> hmac.HMAC:
        """An HMAC keyed with the pepper: recognise content in a cursor without storing it."""
        ...

    async def email_range_prefixes(self, *, after: str, limit: int) -> Sequence[str]:
        """Distinct 6-hex SHA-1 prefixes of enrolled e-mails, ascending, greater than ``after``."""
        ...

    async def password_range_prefixes(self, *, after: str, limit: int) -> Sequence[str]:
        """Distinct 5-hex SHA-1 prefixes of the leaked-password corpus, greater than ``after``."""
        ...


S = TypeVar("S", bound=ConnectorSettings)


class Connector(ABC, Generic[S]):
    """A feed connector. Subclass it, set the class attributes, implement :meth:`pages`, and
    register the class under the entry-point group ``exposure.connectors`` (see registry).

    ``name``: stable identifier (cursor key, ``source`` of its exposures, ``EXPOSURE_<NAME>_*``).
    ``settings_type``: its :class:`ConnectorSettings`. ``default_schedule``: crontab line or
    ``every <n>m``; ``EXPOSURE_<NAME>_SCHEDULE`` overrides it. The process-wide aiohttp session is
    injected: a connector never creates its own.
    """

    name: ClassVar[str]
    settings_type: ClassVar[type[ConnectorSettings]]
    default_schedule: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(
        self, settings: S, *, session: aiohttp.ClientSession, inputs: ConnectorInputs
    ) -> None:
        self.settings = settings
        self.session = session
        self.inputs = inputs

    @abstractmethod
    def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        """Yield pages from ``cursor`` (the last stored one, ``None`` at first) onwards.

        Code after a ``yield`` runs only once that page and its cursor are committed, and the
        ``yield`` evaluates to the page's :class:`Stored` outcome. When storing fails, the
        generator is closed at the ``yield`` (``GeneratorExit``): do nothing irreversible there.
        After a retriable error the runner calls ``pages`` again with the last stored cursor.
        """

    @classmethod
    def watch(cls, settings: Any, stop: asyncio.Event) -> AsyncIterator[None] | None:
        """Changes of this connector's source as they happen (one item per change seen), for
        a daemon that then runs the connector at once, until ``stop``; its schedule stays as
        the fallback. ``None`` (the default): the schedule alone. ``settings`` is an instance
        of :attr:`settings_type`."""
        return None

    @classmethod
    def schedule_variable(cls) -> str:
        return f"EXPOSURE_{cls.name.upper()}_SCHEDULE"

    @classmethod
    def schedule(cls, environ: Mapping[str, str]) -> Schedule:
        """The effective schedule: ``EXPOSURE_<NAME>_SCHEDULE`` or :attr:`default_schedule`."""
        text = environ.get(cls.schedule_variable(), "").strip() or cls.default_schedule
        return parse_schedule(text, cls.schedule_variable())

    @classmethod
    def variables(cls) -> list[Variable]:
        """Every variable the connector reads, its schedule override included."""
        schedule = Variable(
            cls.schedule_variable(),
            "when the daemon runs it",
            cls.default_schedule,
            False,
            False,
            str,
        )
        return [*cls.settings_type.variables(), schedule]
