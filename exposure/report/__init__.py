"""The weekly exposure report (HTML, CSV, JSON, mail) and the dashboard's figures.

Public API, shared by ``exposure report``, the daemon's Monday job and the HTTP API:

* :class:`IsoWeek` (``IsoWeek.parse("2025-W20")``, ``.bounds(tz)``) and
  :func:`last_complete_week`;
* :func:`build_report` -> :class:`Report` (``.html``, ``.csv_bytes``, ``.figures``,
  ``.json_bytes``), :func:`write_report`, :func:`produce_weekly_report` (build, write, mail);
* :func:`send_report` (SMTP); :func:`~exposure.report.dashboard.dashboard_figures`.
"""

from __future__ import annotations

from exposure.report.builder import (
    Report,
    ReportRun,
    build_report,
    produce_weekly_report,
    write_report,
)
from exposure.report.mail import MailFailed, MailRejected, mail_configured, send_report
from exposure.report.weeks import InvalidWeek, IsoWeek, WeekNotStarted, last_complete_week

__all__ = [
    "InvalidWeek",
    "IsoWeek",
    "MailFailed",
    "MailRejected",
    "Report",
    "ReportRun",
    "WeekNotStarted",
    "build_report",
    "last_complete_week",
    "mail_configured",
    "produce_weekly_report",
    "send_report",
    "write_report",
]
