"""Typed, frozen settings built once from the environment and ``.env``.

Precedence: process environment > ``.env`` (python-dotenv, read from the working directory or
``EXPOSURE_ENV_FILE``) > defaults. Every variable is documented on :class:`Settings` and in
``.env.example``. Invalid values fail at start-up with a :class:`ConfigurationError` that names
the variable and says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from exposure.domain.broker_sites import BrokerDomains
from exposure.errors import ConfigurationError
from exposure.secret import Secret

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./exposure.db"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the monitor reads from its environment.

    database_url: ``EXPOSURE_DATABASE_URL``; SQLite (embedded default) or PostgreSQL.
    pepper: ``EXPOSURE_PEPPER``; 32 random bytes as 64 hex characters (generated on first run).
    broker_domains: ``EXPOSURE_BROKER_DOMAINS``; comma-separated; subdomains count too.
    login_id_case_sensitive: ``EXPOSURE_LOGIN_ID_CASE_SENSITIVE``; default case-insensitive.
    phone_region: ``EXPOSURE_PHONE_REGION``; region for numbers without a country code.
    webhook_url: ``EXPOSURE_WEBHOOK_URL``; the broker's reset service.
    webhook_secrets: ``EXPOSURE_WEBHOOK_SECRET``; one or more ``whsec_<base64>`` keys,
        space or comma separated (the first signs; all are sent during a rotation).
    timezone: ``EXPOSURE_TIMEZONE``; the zone report weeks follow.
    api_listen: ``EXPOSURE_API_LISTEN``; ``host:port`` of the HTTP API.
    api_max_body_bytes: ``EXPOSURE_API_MAX_BODY``; largest request body accepted, in bytes.
    range_public: ``EXPOSURE_RANGE_PUBLIC``; ``/range`` needs no token (it holds only hash
        suffixes, like the public Pwned Passwords service).
    webhook_timeout: ``EXPOSURE_WEBHOOK_TIMEOUT``; seconds per delivery attempt.
    webhook_retry_hours: ``EXPOSURE_WEBHOOK_RETRY_HOURS``; how long an event is retried before
        it is dead-lettered.
    connectors: ``EXPOSURE_CONNECTORS``; the connectors the daemon schedules (comma-separated).
    report_dir: ``EXPOSURE_REPORT_DIR``; where weekly reports are kept.
    report_schedule: ``EXPOSURE_REPORT_SCHEDULE``; crontab line in ``timezone`` for the report.
    report_lang: ``EXPOSURE_REPORT_LANG``; ``ja`` or ``en``.
    smtp_url: ``EXPOSURE_SMTP_URL``; ``smtp://user:pass@host:587`` (``smtps://`` for TLS).
    report_recipients: ``EXPOSURE_REPORT_RECIPIENTS``; comma-separated addresses.
    report_sender: ``EXPOSURE_REPORT_FROM``; the From address of report mail.
    log_format: ``EXPOSURE_LOG_FORMAT``; ``json`` (default for the daemon) or ``text``.
    console_url: ``EXPOSURE_CONSOLE_URL``; the console's address as browsers reach it (e.g.
        ``https://exposure.example.internal`` behind a TLS proxy): https makes session cookies
        Secure, and forms are accepted only from this origin. Unset: taken from each request.
    console_idle_minutes: ``EXPOSURE_CONSOLE_IDLE_MINUTES``; a console session unused this
        long ends.
    console_session_hours: ``EXPOSURE_CONSOLE_SESSION_HOURS``; a console session ends this
        long after sign-in, however active.
    environ: every ``EXPOSURE_*`` variable, for connector settings (``EXPOSURE_<NAME>_*``);
        never shown, since it holds their API keys.
    """

    database_url: str = DEFAULT_DATABASE_URL
    pepper: Secret[bytes]
    broker_domains: BrokerDomains = field(default_factory=lambda: BrokerDomains(frozenset()))
    login_id_case_sensitive: bool = False
    phone_region: str = "JP"
    webhook_url: str | None = None
    webhook_secrets: tuple[Secret[bytes], ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))
    api_listen: tuple[str, int] = ("127.0.0.1", 8080)
    api_max_body_bytes: int = 10 << 20
    range_public: bool = True
    webhook_timeout: float = 10.0
    webhook_retry_hours: float = 72.0
    connectors: tuple[str, ...] = ("folder",)
    report_dir: Path = Path("reports")
    report_schedule: str = "0 8 * * mon"
    report_lang: str = "ja"
    smtp_url: Secret[str] | None = None
    report_recipients: tuple[str, ...] = ()
    report_sender: str = "exposure@localhost"
    log_format: str = "json"
    console_url: str | None = None
    console_idle_minutes: float = 30.0
    console_session_hours: float = 12.0
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

    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if value is not None and value.strip() else None

    pepper_text = get("EXPOSURE_PEPPER")
    if pepper_text is None:
        if not generate_pepper:
            raise ConfigurationError(
                "EXPOSURE_PEPPER", "not set; run any exposure command once to generate it"
            )
        pepper_text = _write_new_pepper(env_file)

    return Settings(
        database_url=get("EXPOSURE_DATABASE_URL") or DEFAULT_DATABASE_URL,
        pepper=Secret(_parse_pepper(pepper_text)),
        broker_domains=BrokerDomains.parse(get("EXPOSURE_BROKER_DOMAINS") or ""),
        login_id_case_sensitive=_parse_bool(
            "EXPOSURE_LOGIN_ID_CASE_SENSITIVE", get("EXPOSURE_LOGIN_ID_CASE_SENSITIVE")
        ),
        phone_region=_parse_region(get("EXPOSURE_PHONE_REGION") or "JP"),
        webhook_url=_parse_url("EXPOSURE_WEBHOOK_URL", get("EXPOSURE_WEBHOOK_URL")),
        webhook_secrets=_parse_webhook_secrets(get("EXPOSURE_WEBHOOK_SECRET")),
        timezone=_parse_timezone(get("EXPOSURE_TIMEZONE") or "Asia/Tokyo"),
        api_listen=_parse_listen(get("EXPOSURE_API_LISTEN") or "127.0.0.1:8080"),
        api_max_body_bytes=_parse_number(
            "EXPOSURE_API_MAX_BODY", get("EXPOSURE_API_MAX_BODY"), 10 << 20, int
        ),
        range_public=_parse_bool("EXPOSURE_RANGE_PUBLIC", get("EXPOSURE_RANGE_PUBLIC") or "true"),
        webhook_timeout=_parse_number(
            "EXPOSURE_WEBHOOK_TIMEOUT", get("EXPOSURE_WEBHOOK_TIMEOUT"), 10.0, float
        ),
        webhook_retry_hours=_parse_number(
            "EXPOSURE_WEBHOOK_RETRY_HOURS", get("EXPOSURE_WEBHOOK_RETRY_HOURS"), 72.0, float
        ),
        connectors=_parse_list(get("EXPOSURE_CONNECTORS") or "folder"),
        report_dir=Path(get("EXPOSURE_REPORT_DIR") or "reports"),
        report_schedule=get("EXPOSURE_REPORT_SCHEDULE") or "0 8 * * mon",
        report_lang=_parse_choice(
            "EXPOSURE_REPORT_LANG", get("EXPOSURE_REPORT_LANG") or "ja", ("ja", "en")
        ),
        smtp_url=_parse_smtp(get("EXPOSURE_SMTP_URL")),
        report_recipients=_parse_list(get("EXPOSURE_REPORT_RECIPIENTS") or ""),
        report_sender=get("EXPOSURE_REPORT_FROM") or "exposure@localhost",
        log_format=_parse_choice(
            "EXPOSURE_LOG_FORMAT", get("EXPOSURE_LOG_FORMAT") or "json", ("json", "text")
        ),
        console_url=_parse_console_url(get("EXPOSURE_CONSOLE_URL")),
        console_idle_minutes=_parse_number(
            "EXPOSURE_CONSOLE_IDLE_MINUTES", get("EXPOSURE_CONSOLE_IDLE_MINUTES"), 30.0, float
        ),
        console_session_hours=_parse_number(
            "EXPOSURE_CONSOLE_SESSION_HOURS", get("EXPOSURE_CONSOLE_SESSION_HOURS"), 12.0, float
        ),
        environ={k: v for k, v in values.items() if k.startswith("EXPOSURE_")},
    )


def _write_new_pepper(env_file: Path) -> str:
    pepper = secrets.token_hex(PEPPER_BYTES)
    # O_CREAT with 0600 so the secret is never world-readable, not even for an instant.
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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


def _parse_pepper(text: str) -> bytes:
    try:
        pepper = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(
            "EXPOSURE_PEPPER", "must be hex (64 characters for 32 bytes)"
        ) from None
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ConfigurationError(
            "EXPOSURE_PEPPER", f"must be at least {MIN_PEPPER_BYTES} bytes of hex"
        )
    return pepper


def _parse_bool(name: str, text: str | None) -> bool:
    if text is None:
        return False
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(name, "must be true or false")


def _parse_region(text: str) -> str:
    if len(text) != 2 or not text.isalpha():
        raise ConfigurationError(
            "EXPOSURE_PHONE_REGION", "must be a two-letter region code such as JP"
        )
    return text.upper()


def _parse_url(name: str, text: str | None) -> str | None:
    if text is None:
        return None
    if not text.startswith(("http://", "https://")):
        raise ConfigurationError(name, "must be an http:// or https:// URL")
    return text


def _parse_webhook_secrets(text: str | None) -> tuple[Secret[bytes], ...]:
    if text is None:
        return ()
    keys: list[Secret[bytes]] = []
    for token in text.replace(",", " ").split():
        if not token.startswith("whsec_"):
            raise ConfigurationError(
                "EXPOSURE_WEBHOOK_SECRET", "each secret must start with whsec_"
            )
        try:
            keys.append(Secret(base64.b64decode(token.removeprefix("whsec_"), validate=True)))
        except binascii.Error:
            raise ConfigurationError(
                "EXPOSURE_WEBHOOK_SECRET", "the part after whsec_ must be base64"
            ) from None
    return tuple(keys)


def _parse_timezone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError("EXPOSURE_TIMEZONE", f"unknown time zone {text!r}") from None


def _parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigurationError("EXPOSURE_API_LISTEN", "must be host:port, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


N = TypeVar("N", int, float)


def _parse_number(name: str, text: str | None, default: N, kind: type[N]) -> N:
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigurationError(name, f"must be a {kind.__name__}") from None
    if value <= 0:
        raise ConfigurationError(name, "must be positive")
    return value


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _parse_choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise ConfigurationError(name, f"must be one of {', '.join(choices)}")
    return text


def _parse_console_url(text: str | None) -> str | None:
    if text is None:
        return None
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise ConfigurationError(
            "EXPOSURE_CONSOLE_URL",
            "must be the console's origin, e.g. https://exposure.example.internal (no path)",
        )
    return f"{parsed.scheme}://{parsed.netloc.lower()}"


def _parse_smtp(text: str | None) -> Secret[str] | None:
    if text is None:
        return None
    if not text.startswith(("smtp://", "smtps://")):
        raise ConfigurationError(
            "EXPOSURE_SMTP_URL", "must be smtp://host:port or smtps://host:port"
        )
    return Secret(text)
