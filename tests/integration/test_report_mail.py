"""Mailing the report to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.errors import ConfigurationError, ExposureError
from exposure.report import MailRejected, build_report, produce_weekly_report, send_report
from exposure.secret import Secret
from exposure.settings import Settings
from tests.integration.test_report_figures import WEEK, jst, seed

PASSWORD = "s3cr@t-p4ss"


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.endswith("@nowhere.example"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            content = envelope.original_content or envelope.content
            assert isinstance(content, bytes)
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


class Logins:
    """An authenticator accepting one user, recording what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login, data.password))
        return AuthResult(success=data.login == b"reporter" and data.password == PASSWORD.encode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, Logins, int]]:
    inbox, logins, port = Inbox(), Logins(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=logins,
        auth_require_tls=False,  # the test server has no certificate; see starttls=off below
    )
    controller.start()
    try:
        yield inbox, logins, port
    finally:
        controller.stop()


def _mail_settings(settings: Settings, url: str, lang: str = "en") -> Settings:
    return dataclasses.replace(
        settings,
        smtp_url=Secret(url),
        report_recipients=("ciso@broker.example", "audit@broker.example"),
        report_sender="exposure@broker.example",
        report_lang=lang,
    )


async def test_report_is_mailed_with_html_body_and_csv(
    engine: AsyncEngine,
    settings: Settings,
    smtp_server: tuple[Inbox, Logins, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox, logins, port = smtp_server
    await seed(engine)
    mail = _mail_settings(settings, f"smtp://reporter:s3cr%40t-p4ss@127.0.0.1:{port}?starttls=off")
    report = await build_report(engine, mail, WEEK, "en", now=jst(19, 8))
    with caplog.at_level(logging.DEBUG):
        await send_report(mail, report.html, report.csv_bytes, str(WEEK))

    assert logins.seen == [(b"reporter", PASSWORD.encode())]  # %40 was decoded to @
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "exposure@broker.example"
    assert envelope.rcpt_tos == ["ciso@broker.example", "audit@broker.example"]
    [message] = inbox.messages()
    assert message["Subject"] == "[exposure] Weekly leaked-credential exposure report 2025-W20"
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    html = body.get_content()
    assert "Weekly leaked-credential exposure report" in html and "<svg" in html
    assert html.replace("\r\n", "\n") == report.html  # mail travels with CRLF line ends
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_filename() == "exposure-report-2025-W20.csv"
    assert attachment.get_payload(decode=True) == report.csv_bytes
    text_part = message.get_body(preferencelist=("plain",))
    assert text_part is not None and "2025-W20" in text_part.get_content()
    # Our side only: the test server's own debug log echoes the AUTH exchange.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail."))
    assert PASSWORD not in ours and "s3cr%40t" not in ours
    assert "mailed to 2 recipient(s) via smtp://reporter:***@127.0.0.1" in ours


async def test_daemon_entry_point_writes_and_mails_in_japanese(
    engine: AsyncEngine, settings: Settings, smtp_server: tuple[Inbox, Logins, int], tmp_path: Any
) -> None:
    inbox, _, port = smtp_server
    await seed(engine)
    mail = dataclasses.replace(
        _mail_settings(settings, f"smtp://127.0.0.1:{port}", lang="ja"), report_dir=tmp_path
    )
    run = await produce_weekly_report(engine, mail, now=jst(19, 8))  # Monday 08:00 JST
    assert run.emailed is True
    assert str(run.report.week) == "2025-W20"
    assert {p.name for p in run.paths} == {
        f"exposure-report-2025-W20.ja.{x}" for x in ("html", "csv", "json")
    }
    [message] = inbox.messages()
    assert message["Subject"] == "【exposure】漏えい認証情報 週次レポート 2025-W20"
    body = message.get_body(preferencelist=("html",))
    assert body is not None and "漏えい認証情報 週次レポート" in body.get_content()


async def test_password_is_never_sent_without_tls(
    engine: AsyncEngine, settings: Settings, smtp_server: tuple[Inbox, Logins, int]
) -> None:
    inbox, logins, port = smtp_server
    # A user name and no starttls=off: STARTTLS is required, and this server has none.
    mail = _mail_settings(settings, f"smtp://reporter:{PASSWORD}@127.0.0.1:{port}")
    with pytest.raises(ExposureError) as raised:
        await send_report(mail, "<p>report</p>", b"a,b\r\n", "2025-W20")
    assert PASSWORD not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)
    assert logins.seen == [] and inbox.envelopes == []


async def test_refused_recipients_are_a_fatal_error(
    settings: Settings, smtp_server: tuple[Inbox, Logins, int]
) -> None:
    inbox, _, port = smtp_server
    mail = dataclasses.replace(
        _mail_settings(settings, f"smtp://127.0.0.1:{port}"),
        report_recipients=("ciso@nowhere.example",),
    )
    with pytest.raises(MailRejected, match="SMTPRecipientsRefused"):
        await send_report(mail, "<p>report</p>", b"a,b\r\n", "2025-W20")
    assert inbox.envelopes == []


async def test_unconfigured_mail_is_a_configuration_error(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="EXPOSURE_SMTP_URL"):
        await send_report(settings, "<p></p>", b"", "2025-W20")
    no_one = dataclasses.replace(settings, smtp_url=Secret("smtp://127.0.0.1:1"))
    with pytest.raises(ConfigurationError, match="EXPOSURE_REPORT_RECIPIENTS"):
        await send_report(no_one, "<p></p>", b"", "2025-W20")
