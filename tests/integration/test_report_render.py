"""The report's HTML, CSV and JSON files, both languages, and the CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.report import IsoWeek, build_report, write_report
from exposure.report.i18n import Locale
from exposure.settings import Settings
from exposure.store.models import ConnectorRun, Customer, Exposure
from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_report_figures import (
    END,
    HINT,
    SPECS,
    START,
    TOKYO,
    WEEK,
    _exposure_row,
    as_utc,
    customer_id,
    exposure_id,
    jst,
    seed,
    sql,
)

CSV_HEADER = [
    "exposure_id",
    "customer_id",
    "action",
    "password_status",
    "state",
    "leak_type",
    "source",
    "first_seen",
    "resolved_at",
    "site_domain",
    "severity",
    "identifier_kind",
]
BREACHED = {"w19-open", "w19-esc", "w20-d", "w20-late"}
FETCHING_TAGS = {"script", "link", "img", "iframe", "object", "embed", "image", "use", "video"}
URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "poster", "data", "srcset"}


class _Elements(HTMLParser):
    """Every start tag and attribute as a browser's tokenizer sees them (text is not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_self_contained(page: str) -> None:
    """No element that fetches anything, no URL attribute leaving the page, no script."""
    parser = _Elements()
    parser.feed(page)
    names = [tag for tag, _ in parser.tags]
    assert "svg" in names
    assert not FETCHING_TAGS & set(names), FETCHING_TAGS & set(names)
    for tag, attrs in parser.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)  # no inline event handlers
            if name in URL_ATTRIBUTES:
                assert value is not None and not re.match(r"\s*(?:[a-z]+:|//)", value, re.I), (
                    tag,
                    name,
                    value,
                )
    assert not re.search(r"url\(\s*['\"]?\s*(?:[a-z]+:|//)", page, re.I)
    assert "@import" not in page


async def test_both_languages_render_completely(engine: AsyncEngine, settings: Settings) -> None:
    await seed(engine)
    ja = await build_report(engine, settings, WEEK, "ja", now=jst(19, 8))
    en = await build_report(engine, settings, WEEK, "en", now=jst(19, 8))

    for needle in (
        '<html lang="ja">',
        "漏えい認証情報 週次レポート",
        "2025年 第20週",
        "2025年5月12日（月）〜2025年5月18日（日）",
        "12件",  # new exposures
        "12名",  # customers affected
        "67.6時間",
        "1,050",  # lines read, with a thousands separator
        "強制リセット",
        "対応別の新規検知",  # a chart title, inside the SVG
        "2025年5月9日 10:00",  # SLA list, first seen in Tokyo time
    ):
        assert needle in ja.html, needle
    for needle in (
        '<html lang="en">',
        "Weekly leaked-credential exposure report",
        "Week 20 of 2025",
        "Mon 12 May 2025 – Sun 18 May 2025",
        "67.6 h",
        "1,050",
        "Forced reset",
        "New exposures by action",
        "9 May 2025 10:00",
    ):
        assert needle in en.html, needle
    assert "Forced reset" not in ja.html and "強制リセット" not in en.html
    # Chart labels follow the language too.
    ja_svg = "".join(re.findall(r"<svg.*?</svg>", ja.html, re.S))
    assert "顧客へ通知" in ja_svg and "Notify customer" not in ja_svg
    assert Locale("ja").strings.keys() == Locale("en").strings.keys()
    assert all(value.strip() for value in Locale("ja").strings.values())


async def test_html_is_self_contained_and_private(engine: AsyncEngine, settings: Settings) -> None:
    await seed(engine)
    report = await build_report(engine, settings, WEEK, "en", now=jst(19, 8))
    assert_self_contained(report.html)
    assert len(re.findall(r"<svg\b", report.html)) == 4
    blobs = {
        "html": report.html,
        "csv": report.csv_bytes.decode(),
        "json": report.json_bytes.decode(),
    }
    for name, blob in blobs.items():
        assert HINT not in blob and "***" not in blob, name
    # Customer ids: only the SLA list (HTML and JSON) and the CSV.
    sla_section = re.search(r'<section id="sla">.*?</section>', report.html, re.S)
    assert sla_section is not None
    outside = report.html.replace(sla_section.group(0), "")
    for spec in SPECS:
        assert customer_id(spec.key) not in outside
        assert (customer_id(spec.key) in sla_section.group(0)) == (spec.key in BREACHED)
    figures = dict(report.figures)
    breaches = figures.pop("sla")
    assert "C-" not in json.dumps(figures)
    assert {b["customer_id"] for b in breaches["breaches"]} == {customer_id(k) for k in BREACHED}


async def test_csv_holds_exactly_the_weeks_exposures(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine)
    report = await build_report(engine, settings, WEEK, "ja", now=jst(19, 8))
    rows = list(csv.reader(io.StringIO(report.csv_bytes.decode("utf-8"))))
    assert rows[0] == CSV_HEADER
    body = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
    async with engine.connect() as conn:
        expected = await sql(
            conn,
            "SELECT exposure_id, customer_id, action, password_status, state, leak_type, source,"
            " first_seen, resolved_at, site_domain, severity, identifier_kind FROM exposures"
            " WHERE first_seen >= :s AND first_seen < :e",
            s=START,
            e=END,
        )
    assert {r["exposure_id"] for r in body} == {r[0] for r in expected}
    assert len(body) == len(expected) == 12
    ids = {r["exposure_id"] for r in body}
    assert exposure_id("w20-sun") in ids  # Sunday 23:30 JST
    assert exposure_id("w20-mon") in ids  # Monday 08:59 JST, still Sunday in UTC
    assert exposure_id("w21-mon") not in ids  # Monday 00:30 JST of the next week
    assert exposure_id("w19-sun") not in ids
    by_id = {r[0]: r for r in expected}
    for row in body:
        db = by_id[row["exposure_id"]]
        assert [row[c] for c in CSV_HEADER[1:7]] == list(db[1:7])
        assert datetime.fromisoformat(row["first_seen"]) == as_utc(db[7])
        assert row["first_seen"].endswith("+09:00")
        if db[8] is None:
            assert row["resolved_at"] == ""
        else:
            assert datetime.fromisoformat(row["resolved_at"]) == as_utc(db[8])
        assert [row["site_domain"], row["severity"], row["identifier_kind"]] == list(db[9:12])
    assert {r["site_domain"] for r in body} >= {"mirai-sec.co.jp", "trade.sec.example", ""}
    first = body[0]
    assert first["exposure_id"] == exposure_id("w20-mon")  # oldest first
    assert first["first_seen"] == "2025-05-12T08:59:00+09:00"


async def test_json_has_every_figure(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    await seed(engine)
    report = await build_report(engine, settings, WEEK, "en", now=jst(19, 8))
    paths = write_report(report, tmp_path / "reports")
    assert [p.name for p in paths] == [
        f"exposure-report-2025-W20.en.{x}" for x in ("html", "csv", "json")
    ]
    assert paths[0].read_text("utf-8") == report.html
    assert paths[1].read_bytes() == report.csv_bytes
    data: dict[str, Any] = json.loads(paths[2].read_text("utf-8"))
    assert data == json.loads(json.dumps(report.figures))
    assert set(data) == {
        "lang", "week", "timezone", "period", "generated_at", "in_progress", "as_of", "notice",
        "headline", "previous_week",
        "changes", "new_exposures_by_action", "new_exposures_by_password_status",
        "new_exposures_by_leak_type", "stealer_log_sites", "sla", "sources", "connectors",
        "delivery", "trend",
    }  # fmt: skip
    assert set(data["headline"]) == set(data["changes"]) == set(data["previous_week"]) - {"week"}
    assert data["period"] == {"start": "2025-05-11T15:00:00Z", "end": "2025-05-18T15:00:00Z"}
    assert len(data["trend"]) == 12
    assert set(data["new_exposures_by_password_status"]) == {
        "live",
        "tweaked",
        "unknown",
        "absent",
        "stale",
    }
    assert set(data["delivery"]["events_by_state"]) == {"delivered", "pending", "failed", "dead"}
    assert data["headline"]["sla_breaches"] == len(data["sla"]["breaches"])
    # A closed week: figures run to its end, and it had data.
    assert data["in_progress"] is False and data["as_of"] == data["period"]["end"]
    assert data["notice"] is None


async def test_cli_writes_the_report(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await seed(engine)
    env = environment(database_url, EXPOSURE_REPORT_DIR=str(tmp_path / "default"))
    out = tmp_path / "out"
    result = run_cli(
        "report", "--week", "2025-W20", "--lang", "en", "--out", str(out), env=env, cwd=tmp_path
    )
    summary = json.loads(result.stdout)
    assert summary["week"] == "2025-W20"
    assert summary["lang"] == "en"
    assert summary["headline"]["new_exposures"] == 12
    assert summary["headline"]["sla_breaches"] == 4
    assert summary["emailed"] is False
    assert {kind: Path(path) for kind, path in summary["files"].items()} == {
        kind: out / f"exposure-report-2025-W20.en.{kind}" for kind in ("html", "csv", "json")
    }
    written = _read_all(out)
    assert sorted(written) == sorted(Path(p).name for p in summary["files"].values())
    html = written["exposure-report-2025-W20.en.html"]
    assert b"Weekly leaked-credential exposure report" in html
    assert written["exposure-report-2025-W20.en.csv"].count(b"\r\n") == 13  # header + 12 rows

    # Defaults: the last complete week in Tokyo, EXPOSURE_REPORT_LANG, EXPOSURE_REPORT_DIR.
    result = run_cli("report", env={**env, "EXPOSURE_REPORT_LANG": "ja"}, cwd=tmp_path)
    summary = json.loads(result.stdout)
    today = datetime.now(UTC).astimezone(TOKYO).date()
    iso = (today - timedelta(days=7)).isocalendar()
    assert summary["week"] == f"{iso.year}-W{iso.week:02d}"
    assert summary["lang"] == "ja"
    assert Path(summary["files"]["html"]).parent == tmp_path / "default"

    bad = run_cli("report", "--week", "2025-W54", env=env, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "2025-W54" in bad.stderr
    no_mail = run_cli("report", "--week", "2025-W20", "--email", env=env, cwd=tmp_path, check=False)
    assert no_mail.returncode == 2 and "EXPOSURE_SMTP_URL" in no_mail.stderr


@pytest.mark.parametrize(("text", "week"), [("2025-W20", (2025, 20)), ("2026w01", (2026, 1))])
def test_iso_week_parsing(text: str, week: tuple[int, int]) -> None:
    assert IsoWeek.parse(text) == IsoWeek(*week)
    assert str(IsoWeek.parse(text)) == f"{week[0]}-W{week[1]:02d}"


def test_iso_week_rejects_nonsense() -> None:
    from exposure.report import InvalidWeek, last_complete_week

    for text in ("2025-20", "2025-W00", "2025-W53", "W20"):
        with pytest.raises(InvalidWeek):
            IsoWeek.parse(text)
    assert IsoWeek.parse("2026-W53") == IsoWeek(2026, 53)  # 2026 has 53 ISO weeks
    # Monday 00:30 JST is Sunday in UTC: the week that just ended is already complete.
    assert last_complete_week(jst(19, 0, 30), TOKYO) == WEEK
    assert last_complete_week(jst(18, 23, 59), TOKYO) == WEEK.shift(-1)
    assert IsoWeek(2025, 1).shift(-1) == IsoWeek(2024, 52)


def _read_all(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


async def test_empty_week_renders(engine: AsyncEngine, settings: Settings) -> None:
    report = await build_report(engine, settings, WEEK, "ja", now=jst(19, 8))
    head = report.figures["headline"]
    assert head["new_exposures"] == 0 and head["median_hours_to_reset"] is None
    assert report.figures["changes"]["new_exposures"]["percent"] is None
    assert "SLAを超過した未完了の強制リセットはありません。" in report.html
    assert "実行記録はありません。" in report.html
    # Nothing was ever ingested: the report says so, and how to get the week in progress.
    assert report.figures["notice"] == "no_data"
    assert "まだ何も取り込まれていない" in report.html
    assert "exposure report --week 2025-W21" in report.html
    assert_self_contained(report.html)
    assert report.csv_bytes.decode().splitlines() == [",".join(CSV_HEADER)]


async def test_unknown_values_render_escaped(engine: AsyncEngine, settings: Settings) -> None:
    """A leak type newer than this release shows by its raw name; every value is escaped."""
    await seed(engine)
    odd = dataclasses.replace(SPECS[0], key="odd", leak="paste<site>", state="open")
    async with engine.begin() as conn:
        await conn.execute(
            insert(Customer).values(customer_id=customer_id("odd"), created_at=jst(1, 0))
        )
        await conn.execute(
            insert(Exposure).values(**{**_exposure_row(99, odd), "source": "<script>x</script>"})
        )
        await conn.execute(
            insert(ConnectorRun).values(
                connector='feed"><img src=//evil.example>', started_at=jst(13, 1), outcome="failed"
            )
        )
    report = await build_report(engine, settings, WEEK, "en", now=jst(19, 8))
    assert report.figures["new_exposures_by_leak_type"]["paste<site>"] == 1
    assert "paste&lt;site&gt;" in report.html  # in the table and in the chart's label
    assert "paste<site>" not in report.html
    assert_self_contained(report.html)
    assert "feed&#34;&gt;&lt;img" in report.html or "feed&quot;&gt;&lt;img" in report.html
