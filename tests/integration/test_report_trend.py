"""Sources, connectors, the 12-week trend and week-over-week changes, against SQL written here
(the seed is described in ``test_report_figures``)."""

from __future__ import annotations

import json

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.report import IsoWeek, build_report
from exposure.settings import Settings
from exposure.store.models import Exposure
from tests.integration.test_report_figures import (
    END,
    START,
    TOKYO,
    WEEK,
    Spec,
    _exposure_row,
    as_utc,
    case_id,
    customer_id,
    jst,
    seed,
    sql,
)


async def test_sources_connectors_trend_and_changes(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine)
    f = (await build_report(engine, settings, WEEK, "ja", now=jst(19, 8))).figures
    async with engine.connect() as conn:
        runs = await sql(
            conn,
            "SELECT source, state, stats FROM ingest_runs"
            " WHERE started_at >= :s AND started_at < :e",
            s=START,
            e=END,
        )
        sources = {s["source"]: s for s in f["sources"]}
        assert set(sources) == {"darkweb", "hibp-manual"}  # late-source started after the week
        darkweb = sources["darkweb"]
        stats = [json.loads(r[2]) for r in runs if r[0] == "darkweb"]
        assert darkweb["runs"] == len(stats) == 2
        assert darkweb["records"] == sum(s["records"] for s in stats) == 940
        assert darkweb["lines"] == 1050
        assert darkweb["matched"] == 8
        assert darkweb["incomplete"] == sum(1 for r in runs if r[1] != "completed") == 1
        assert as_utc(darkweb["last_success"]) == jst(12, 4)
        assert sources["hibp-manual"]["runs"] == 0
        assert as_utc(sources["hibp-manual"]["last_success"]) == jst(28, 4, month=4)

        connectors = {c["connector"]: c for c in f["connectors"]}
        assert set(connectors) == {"hibp", "feed"}
        totals = await sql(
            conn,
            "SELECT connector, COUNT(*), SUM(records), SUM(matched),"
            " SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN outcome = 'skipped' THEN 1 ELSE 0 END)"
            " FROM connector_runs WHERE started_at >= :s AND started_at < :e GROUP BY connector",
            s=START,
            e=END,
        )
        for name, count, records, matched, failed, skipped in totals:
            c = connectors[name]
            assert (c["runs"], c["records"], c["matched"], c["failed"], c["skipped"]) == (
                count, records, matched, failed, skipped
            )  # fmt: skip
        assert (connectors["hibp"]["records"], connectors["hibp"]["failed"]) == (150, 1)
        assert as_utc(connectors["hibp"]["last_success"]) == jst(14, 2)
        assert as_utc(connectors["feed"]["last_success"]) == jst(8, 2)  # last week's

    trend = f["trend"]
    assert [p["week"] for p in trend] == [str(WEEK.shift(n)) for n in range(-11, 1)]
    by_week = {p["week"]: p for p in trend}
    assert by_week["2025-W20"]["new_exposures"] == 12
    assert by_week["2025-W20"]["confirmed_resets"] == 5
    assert by_week["2025-W19"]["new_exposures"] == 5
    assert by_week["2025-W19"]["confirmed_resets"] == 1
    assert by_week["2025-W10"]["new_exposures"] == 3
    assert sum(p["new_exposures"] for p in trend) == 12 + 5 + 3  # W08 and W21 left out
    assert by_week["2025-W14"]["confirmed_resets"] == 0  # the dismissal is no reset
    async with engine.connect() as conn:
        for point in trend:
            start, end = IsoWeek.parse(point["week"]).bounds(TOKYO)
            confirmed = await sql(
                conn,
                "SELECT COUNT(*) FROM cases WHERE action = 'force_reset'"
                " AND force_reset_at IS NOT NULL AND resolution = 'reset_completed'"
                " AND resolved_at >= :s AND resolved_at < :e",
                s=start,
                e=min(end, jst(19, 8)),
            )
            assert point["confirmed_resets"] == confirmed[0][0], point["week"]

    previous = f["previous_week"]
    assert previous["week"] == "2025-W19"
    assert previous["new_exposures"] == 5
    assert previous["resets_confirmed"] == 1
    assert previous["median_hours_to_reset"] == 24
    # w19-96h and w19-open were waiting when W19 ended; w19-esc was still notify then.
    assert previous["sla_breaches"] == 2
    change = f["changes"]["new_exposures"]
    assert (change["current"], change["previous"], change["delta"]) == (12, 5, 7)
    assert change["percent"] == 140


async def test_resets_and_breaches_count_cases_not_exposures(
    engine: AsyncEngine, settings: Settings
) -> None:
    """A case covering two exposures is one confirmed reset and one SLA breach: w20-a's case
    gains a second exposure reset with it, w20-d's a second open one."""
    await seed(engine)
    extra = [
        Spec("w20-a2", "force_reset", "live", "ulp", jst(12, 11), state="reset_completed",
             resolution="reset_completed", resolved_at=jst(12, 12)),
        Spec("w20-d2", "force_reset", "unknown", "combo", jst(14, 9)),
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(
            insert(Exposure),
            [
                {
                    **_exposure_row(100 + n, s),
                    "customer_id": customer_id(joins),
                    "case_id": case_id(joins),
                }
                for n, (s, joins) in enumerate(zip(extra, ("w20-a", "w20-d"), strict=True))
            ],
        )
    f = (await build_report(engine, settings, WEEK, "en", now=jst(19, 8))).figures
    async with engine.connect() as conn:
        by_exposure = await sql(
            conn,
            "SELECT COUNT(*) FROM exposures WHERE action = 'force_reset'"
            " AND resolution = 'reset_completed' AND resolved_at >= :s AND resolved_at < :e",
            s=START,
            e=END,
        )
        by_case = await sql(
            conn,
            "SELECT COUNT(*) FROM cases WHERE action = 'force_reset'"
            " AND resolution = 'reset_completed' AND resolved_at >= :s AND resolved_at < :e",
            s=START,
            e=END,
        )
    assert (by_exposure[0][0], by_case[0][0]) == (6, 5)
    assert f["trend"][-1]["confirmed_resets"] == f["headline"]["resets_confirmed"] == 5
    breaches = [b["case_id"] for b in f["sla"]["breaches"]]
    assert len(breaches) == len(set(breaches)) == f["headline"]["sla_breaches"] == 4
    assert case_id("w20-d") in breaches
