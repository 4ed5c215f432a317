"""Mailing the weekly report over SMTP (aiosmtplib): the HTML as the body, the CSV attached.

``EXPOSURE_SMTP_URL`` is ``smtp://[user:pass@]host[:port]`` (port 25 by default; upgraded with
STARTTLS when the server offers it) or ``smtps://...`` (implicit TLS, port 465). The query
``?starttls=required`` refuses to send without STARTTLS and ``?starttls=off`` never tries it.
With a user name and no TLS scheme, STARTTLS is required unless ``starttls=off`` says
otherwise, so a password is never sent in the clear by accident. The password is read from the
URL at the moment of sending and appears in no log line or error (only the redacted URL does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiosmtplib.errors import (
    SMTPAuthenticationError,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)

from exposure.errors import ConfigurationError, FatalError, RetriableError
from exposure.report.i18n import Locale
from exposure.secret import Secret, redact_url
from exposure.settings import Settings

log = logging.getLogger("exposure.report")

SMTP_TIMEOUT = 60.0
_STARTTLS = {"auto": None, "required": True, "off": False}


class MailRejected(FatalError):
    """The SMTP server refused our login, sender or recipients: fix the configuration."""

    def __init__(self, server: str, problem: str) -> None:
        self.server = server
        self.problem = problem
        super().__init__(f"SMTP server {server} refused the report: {problem}")


class MailFailed(RetriableError):
    """The SMTP server could not be reached or failed part-way: try again later."""

    def __init__(self, server: str, problem: str) -> None:
        self.server = server
        self.problem = problem
        super().__init__(f"could not mail the report through {server}: {problem}")


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect, parsed from ``EXPOSURE_SMTP_URL``."""

    host: str
    port: int
    use_tls: bool
    start_tls: bool | None
    username: str | None
    password: Secret[str] | None = field(repr=False)
    display: str  # the URL without password or query, for messages

    @classmethod
    def parse(cls, url: Secret[str]) -> SmtpTarget:
        text = url.reveal()
        parts = urlsplit(text)
        display = redact_url(text)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError("EXPOSURE_SMTP_URL", "must be smtp://host:port or smtps://")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        username = unquote(parts.username) if parts.username else None
        implicit = parts.scheme == "smtps"
        mode = query.get("starttls", "required" if username and not implicit else "auto")
        if mode not in _STARTTLS:
            raise ConfigurationError("EXPOSURE_SMTP_URL", "starttls must be auto, required or off")
        try:
            port = parts.port or (465 if implicit else 25)
        except ValueError:
            raise ConfigurationError("EXPOSURE_SMTP_URL", "the port is not a number") from None
        return cls(
            host=parts.hostname,
            port=port,
            use_tls=implicit,
            # Implicit TLS already encrypts; STARTTLS on top of it is meaningless.
            start_tls=False if implicit else _STARTTLS[mode],
            username=username,
            password=Secret(unquote(parts.password)) if parts.password is not None else None,
            display=display,
        )


def mail_configured(settings: Settings) -> bool:
    """True when there is an SMTP server and at least one recipient to mail the report to."""
    return settings.smtp_url is not None and bool(settings.report_recipients)


def build_message(
    settings: Settings, html: str, csv_bytes: bytes, week: str, *, lang: str
) -> EmailMessage:
    """The report mail: a short text part, the HTML alternative, the CSV attachment."""
    locale = Locale.get(lang)
    message = EmailMessage()
    message["Subject"] = locale.t("mail.subject", week=week)
    message["From"] = settings.report_sender
    message["To"] = ", ".join(settings.report_recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.report_sender.rpartition("@")[2] or None)
    message.set_content(locale.t("mail.text", week=week), charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    message.add_attachment(
        csv_bytes, maintype="text", subtype="csv", filename=f"exposure-report-{week}.csv"
    )
    return message


async def send_report(
    settings: Settings, html: str, csv_bytes: bytes, week: str, *, lang: str | None = None
) -> None:
    """Mail one report to ``settings.report_recipients`` through ``settings.smtp_url``.

    Raises :class:`~exposure.errors.ConfigurationError` when mail is not configured,
    :class:`MailRejected` when the server refuses it and :class:`MailFailed` on a transient
    failure (the caller may retry).
    """
    if settings.smtp_url is None:
        raise ConfigurationError("EXPOSURE_SMTP_URL", "not set; cannot mail the report")
    if not settings.report_recipients:
        raise ConfigurationError("EXPOSURE_REPORT_RECIPIENTS", "not set; nobody to mail it to")
    target = SmtpTarget.parse(settings.smtp_url)
    message = build_message(settings, html, csv_bytes, week, lang=lang or settings.report_lang)
    try:
        refused, _ = await aiosmtplib.send(
            message,
            sender=settings.report_sender,
            recipients=list(settings.report_recipients),
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password.reveal() if target.password else None,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            timeout=SMTP_TIMEOUT,
        )
    except (SMTPAuthenticationError, SMTPSenderRefused, SMTPRecipientsRefused) as error:
        raise MailRejected(target.display, _describe(error)) from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise MailFailed(target.display, _describe(error)) from None
    if refused:
        log.warning("report %s: %d recipient(s) refused by %s", week, len(refused), target.display)
    log.info(
        "report %s mailed to %d recipient(s) via %s",
        week,
        len(settings.report_recipients) - len(refused),
        target.display,
    )


def _describe(error: Exception) -> str:
    # The class and SMTP code only: a server's reply text may echo what we sent it.
    if isinstance(error, SMTPResponseException):
        return f"{type(error).__name__} ({error.code})"
    return type(error).__name__
