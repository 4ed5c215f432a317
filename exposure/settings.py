"""Typed, frozen settings built once from the environment and ``.env``.

Precedence: process environment > ``.env`` (python-dotenv, read from the working directory or
``EXPOSURE_ENV_FILE``) > defaults. Every variable is declared once, on :class:`Settings`, in
the grammar connectors use too (:mod:`exposure.variables`), and documented in ``.env.example``.
Invalid values fail at start-up with a :class:`ConfigurationError` that names the variable and
says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from exposure.domain.broker_sites import BrokerDomains
from exposure.errors import ConfigurationError
from exposure.secret import Secret
from exposure.variables import (
    EnvironSettings,
    parse_bool,
    parse_choice,
    parse_endpoint_url,
    parse_list,
    parse_positive_int,
    setting,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./exposure.db"
# Tweaks of a stale leaked password verified per (customer, leaked password): docs/tweaks.md
# says why 20 (twice a typical lock-out threshold; most of the caught share at budget 50).
DEFAULT_TWEAK_GUESSES = 20
MAX_TWEAK_GUESSES = 1000
PEPPER_BYTES = 32
MIN_PEPPER_BYTES = 16

PEPPER_WARNING = """
======================================================================
 WARNING: no EXPOSURE_PEPPER was set, so a new random pepper was
 generated and written to {path} (mode 0600).

 Every customer fingerprint is keyed with this pepper. If it is lost,
 every stored fingerprint becomes useless and all customers must be
 enrolled again. Copy it into your secret store NOW.
======================================================================
"""


# -- the core's own parsers (the generic ones are in exposure.variables): ValueError on a bad
# value, with a message that names no secret.


def _parse_pepper(text: str) -> Secret[bytes]:
    try:
        pepper = bytes.fromhex(text)
    except ValueError:
        raise ValueError("must be hex (64 characters for 32 bytes)") from None
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"must be at least {MIN_PEPPER_BYTES} bytes of hex")
    return Secret(pepper)


def _parse_database_url(text: str) -> str:
    """An async driver's URL: what a newcomer writes from another tool's docs (``sqlite:///``,
    ``postgresql://``) names a synchronous driver, which cannot run here."""
    scheme = text.partition("://")[0].lower()
    if scheme == "sqlite+aiosqlite" or scheme == "postgresql+asyncpg":
        return text
    if scheme.startswith("sqlite"):
        raise ValueError(
            f"{scheme}:// is a synchronous driver: write sqlite+aiosqlite:///./exposure.db"
        )
    if scheme.startswith(("postgres", "postgresql")):
        raise ValueError(
            f"{scheme}:// is not the asyncpg driver: write "
            "postgresql+asyncpg://user:password@host:5432/database"
        )
    raise ValueError(
        "must be sqlite+aiosqlite:///./exposure.db or postgresql+asyncpg://user:password@host/db"
    )


def _parse_region(text: str) -> str:
    if len(text) != 2 or not text.isalpha():
        raise ValueError("must be a two-letter region code such as JP")
    return text.upper()


def _parse_webhook_secrets(text: str) -> tuple[Secret[bytes], ...]:
    keys: list[Secret[bytes]] = []
    for token in text.replace(",", " ").split():
        if not token.startswith("whsec_"):
            raise ValueError("each secret must start with whsec_")
        try:
            keys.append(Secret(base64.b64decode(token.removeprefix("whsec_"), validate=True)))
        except binascii.Error:
            raise ValueError("the part after whsec_ must be base64") from None
    return tuple(keys)


def _parse_timezone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r}") from None


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` too) as the API listens on it."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


N = TypeVar("N", int, float)


def _positive(kind: type[N]) -> Callable[[str], N]:
    """The core's numbers: ``must be a int`` / ``must be a float`` as they always said."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"must be a {kind.__name__}") from None
        if value <= 0:
            raise ValueError("must be positive")
        return value

    return parse


def _parse_tweak_guesses(text: str) -> int:
    """A whole number from 0 (off) to :data:`MAX_TWEAK_GUESSES`."""
    if not text.isdigit() or int(text) > MAX_TWEAK_GUESSES:
        raise ValueError(f"must be a whole number from 0 (off) to {MAX_TWEAK_GUESSES}")
    return int(text)


def _parse_console_url(text: str) -> str:
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise ValueError(
            "must be the console's origin, e.g. https://exposure.example.internal (no path)"
        )
    return f"{parsed.scheme}://{parsed.netloc.lower()}"


def _parse_smtp(text: str) -> Secret[str]:
    if not text.startswith(("smtp://", "smtps://")):
        raise ValueError("must be smtp://host:port or smtps://host:port")
    return Secret(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(EnvironSettings):
    """Everything the monitor reads from its environment: one :func:`setting` per variable
    (the grammar connectors use too, :mod:`exposure.variables`).

    ``environ`` holds every ``EXPOSURE_*`` variable, for connector settings
    (``EXPOSURE_<NAME>_*``); it is never shown, since it holds their API keys.
    """

    database_url: str = setting(
        "EXPOSURE_DATABASE_URL",
        help="SQLite (the embedded default) or postgresql+asyncpg://user:pass@host/db",
        default=DEFAULT_DATABASE_URL,
        parse=_parse_database_url,
    )
    pepper: Secret[bytes] = setting(
        "EXPOSURE_PEPPER",
        help="32 random bytes as 64 hex characters; keys every fingerprint",
        parse=_parse_pepper,
        secret=True,
    )
    broker_domains: BrokerDomains = setting(
        "EXPOSURE_BROKER_DOMAINS",
        help="the broker's domains, comma-separated; subdomains count too",
        default=BrokerDomains(frozenset()),
        parse=BrokerDomains.parse,
        shown="",
    )
    login_id_case_sensitive: bool = setting(
        "EXPOSURE_LOGIN_ID_CASE_SENSITIVE",
        help="compare login IDs case-sensitively",
        default=False,
        parse=parse_bool,
    )
    phone_region: str = setting(
        "EXPOSURE_PHONE_REGION",
        help="region for phone numbers written without a country code",
        default="JP",
        parse=_parse_region,
    )
    webhook_url: str | None = setting(
        "EXPOSURE_WEBHOOK_URL",
        help="the broker's reset service",
        default=None,
        parse=parse_endpoint_url,
    )
    webhook_secrets: tuple[Secret[bytes], ...] = setting(
        "EXPOSURE_WEBHOOK_SECRET",
        help="whsec_<base64> keys, space or comma separated (all sign during a rotation)",
        default=(),
        parse=_parse_webhook_secrets,
        secret=True,
    )
    timezone: ZoneInfo = setting(
        "EXPOSURE_TIMEZONE",
        help="the zone report weeks and crontab schedules follow",
        default=ZoneInfo("Asia/Tokyo"),
        parse=_parse_timezone,
    )
    api_listen: tuple[str, int] = setting(
        "EXPOSURE_API_LISTEN",
        help="host:port of the HTTP API",
        default=("127.0.0.1", 8080),
        parse=parse_listen,
        shown="127.0.0.1:8080",
    )
    api_max_body_bytes: int = setting(
        "EXPOSURE_API_MAX_BODY",
        help="largest request body accepted, in bytes",
        default=10 << 20,
        parse=_positive(int),
    )
    range_public: bool = setting(
        "EXPOSURE_RANGE_PUBLIC",
        help="/range needs no token (it holds only hash suffixes, like Pwned Passwords)",
        default=True,
        parse=parse_bool,
    )
    webhook_timeout: float = setting(
        "EXPOSURE_WEBHOOK_TIMEOUT",
        help="seconds per delivery attempt",
        default=10.0,
        parse=_positive(float),
        shown="10",
    )
    webhook_retry_hours: float = setting(
        "EXPOSURE_WEBHOOK_RETRY_HOURS",
        help="how long an event is retried before it is dead-lettered",
        default=72.0,
        parse=_positive(float),
        shown="72",
    )
    connectors: tuple[str, ...] = setting(
        "EXPOSURE_CONNECTORS",
        help="the connectors the daemon schedules, comma-separated",
        default=("folder",),
        parse=parse_list,
    )
    report_dir: Path = setting(
        "EXPOSURE_REPORT_DIR",
        help="where weekly reports are kept",
        default=Path("reports"),
        parse=Path,
    )
    report_schedule: str = setting(
        "EXPOSURE_REPORT_SCHEDULE",
        help="crontab line, in EXPOSURE_TIMEZONE, for the weekly report",
        default="0 8 * * mon",
    )
    report_lang: str = setting(
        "EXPOSURE_REPORT_LANG",
        help="ja or en",
        default="ja",
        parse=parse_choice("ja", "en", fold_case=False),
    )
    smtp_url: Secret[str] | None = setting(
        "EXPOSURE_SMTP_URL",
        help="smtp://user:pass@host:587 (STARTTLS) or smtps://host:465",
        default=None,
        parse=_parse_smtp,
        secret=True,
    )
    report_recipients: tuple[str, ...] = setting(
        "EXPOSURE_REPORT_RECIPIENTS",
        help="comma-separated addresses for the weekly report",
        default=(),
        parse=parse_list,
    )
    report_sender: str = setting(
        "EXPOSURE_REPORT_FROM",
        help="the From address of report mail",
        default="exposure@localhost",
    )
    log_format: str = setting(
        "EXPOSURE_LOG_FORMAT",
        help="json (the daemon's default) or text",
        default="json",
        parse=parse_choice("json", "text", fold_case=False),
    )
    # Events per ingestion transaction: large enough to amortise the commit (its round trips,
    # and on SQLite the WAL checkpoint it triggers: 500,000 ingests 10M lines 10% quicker than
    # 200,000), small enough that a killed run re-reads little. Tests use tiny batches.
    ingest_batch_events: int = setting(
        "EXPOSURE_INGEST_BATCH_EVENTS",
        help="events per ingestion transaction (tuning)",
        default=500_000,
        parse=parse_positive_int,
    )
    console_url: str | None = setting(
        "EXPOSURE_CONSOLE_URL",
        help="the console's origin as browsers reach it (https makes session cookies Secure;"
        " forms are accepted only from it); unset: taken from each request",
        default=None,
        parse=_parse_console_url,
    )
    console_idle_minutes: float = setting(
        "EXPOSURE_CONSOLE_IDLE_MINUTES",
        help="a console session unused this long ends",
        default=30.0,
        parse=_positive(float),
        shown="30",
    )
    console_session_hours: float = setting(
        "EXPOSURE_CONSOLE_SESSION_HOURS",
        help="a console session ends this long after sign-in, however active",
        default=12.0,
        parse=_positive(float),
        shown="12",
    )
    tweak_guesses: int = setting(
        "EXPOSURE_TWEAK_GUESSES",
        help="small changes of a stale leaked password verified per customer (0: off)",
        default=DEFAULT_TWEAK_GUESSES,
        parse=_parse_tweak_guesses,
    )
    generate_pepper: bool = setting(
        "EXPOSURE_GENERATE_PEPPER",
        help="with no EXPOSURE_PEPPER, generate one into .env on the first run; false: refuse"
        " to start instead (the Docker image sets false: a container's .env is lost with it)",
        default=True,
        parse=parse_bool,
    )
    stop_grace_seconds: float = setting(
        "EXPOSURE_STOP_GRACE_SECONDS",
        help="after SIGTERM the daemon exits within this long, whatever it is doing; keep it"
        " below the grace period of what stops it (Docker, Kubernetes, systemd)",
        default=25.0,
        parse=_positive(float),
        shown="25",
    )
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = None,
    generate_pepper: bool = True,
) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``) layered over ``env_file``."""
    environ = os.environ if environ is None else environ
    env_file = env_file or Path(environ.get("EXPOSURE_ENV_FILE", ".env"))
    file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    values: dict[str, str] = {**file_values, **environ}
    if not values.get("EXPOSURE_PEPPER", "").strip():
        if not generate_pepper:
            raise ConfigurationError(
                "EXPOSURE_PEPPER", "not set; run any exposure command once to generate it"
            )
        if not _generating(values):
            # In a container each would make its own, lost with it: `migrate` and the daemon
            # would disagree, and a re-created container could not read its own database
            # (docs/decisions/pepper-in-containers.md). The image turns generation off.
            raise ConfigurationError(
                "EXPOSURE_PEPPER",
                "not set, and EXPOSURE_GENERATE_PEPPER=false (as in the Docker image, where a "
                "generated pepper would be lost with the container): generate one (openssl "
                "rand -hex 32), put it in .env and back it up",
            )
        values["EXPOSURE_PEPPER"] = _write_new_pepper(env_file)
    exposure_variables = {k: v for k, v in values.items() if k.startswith("EXPOSURE_")}
    return Settings.from_environ(values, environ=exposure_variables)


def _generating(values: Mapping[str, str]) -> bool:
    text = values.get("EXPOSURE_GENERATE_PEPPER", "").strip()
    try:
        return parse_bool(text) if text else True
    except ValueError as error:
        raise ConfigurationError("EXPOSURE_GENERATE_PEPPER", str(error)) from None


def _write_new_pepper(env_file: Path) -> str:
    pepper = secrets.token_hex(PEPPER_BYTES)
    # O_CREAT with 0600 so the secret is never world-readable, not even for an instant.
    try:
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as error:
        # A pepper that cannot be kept must not be used: the next run would make another.
        raise ConfigurationError(
            "EXPOSURE_PEPPER",
            f"not set, and a generated one cannot be kept in {env_file} "
            f"({error.strerror or type(error).__name__}): generate one (openssl rand -hex 32), "
            "set it in the environment or .env, and back it up",
        ) from None
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        if handle.tell() > 0:
            handle.write("\n")
        handle.write(
            "# Generated by exposure on first run. Losing it invalidates every fingerprint.\n"
            f"EXPOSURE_PEPPER={pepper}\n"
        )
    os.chmod(env_file, 0o600)
    print(PEPPER_WARNING.format(path=env_file.resolve()), file=sys.stderr)
    return pepper
