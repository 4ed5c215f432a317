"""Every figure of the weekly report, as frozen values built from the named queries.

Definitions (all over the report week ``[start, end)``, local Monday 00:00 to the next Monday
00:00 in the configured zone; "first seen" is detection by this monitor):

* new exposures: exposures whose ``first_seen`` is in the week, by action, password status and
  leak type; customers affected: distinct customers among them; live credentials: those whose
  leaked password verified against the enrolled hash (``password_status = live``); a close
  variant of it verifying instead (``tweaked``) is its own status, not counted there.
* resets requested: distinct exposures for which an ``exposure.force_reset`` webhook event was
  written in the week (new force_reset exposures and escalations from notify), delivered or not.
* customers to reset (cases whose action is force_reset: one customer incident, one reset):
  those whose reset was asked for in the week (``force_reset_at``), those open at the end of
  the week, and those resolved in the week (either way).
* resets confirmed: force_reset cases whose ``resolution`` is ``reset_completed`` with
  ``resolved_at`` in the week; time to reset is per case, ``resolved_at - force_reset_at``
  (from the moment its action became force_reset), median and p90 by linear interpolation
  between closest ranks (numpy's default), in hours.
* SLA breaches: force_reset cases not resolved at the end of the week whose reset was asked for
  (``force_reset_at``) more than 24 hours before it, oldest request first: one per customer
  incident, however many exposures it covers. For the week in progress (``in_progress``) "the
  end" is now (``as_of``): a reset asked for two minutes ago is no breach. Every other figure
  of the week in progress likewise covers the week so far, ``[start, as_of)``. A week that has
  not started is refused (:class:`~exposure.report.weeks.WeekNotStarted`).
* sources: ingest runs started in the week per source (runs, incomplete runs, lines, records,
  matched records) and its last completed run before the end of the week; connectors: runs
  started in the week (records, matched, failed, skipped) and the last successful run.
* stealer-log sites: ``site_domain`` of stealer_log and session_cookie exposures first seen in
  the week.
* delivery: webhook events written in the week by their current state, and delivery attempts
  made in the week by outcome.
* trend: new exposures and confirmed resets (cases, as in the headline) per week for the 12
  weeks ending with this one.
* changes: each headline figure against the previous week's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from exposure import JsonObject
from exposure.clock import iso_utc
from exposure.domain.cases import RESET_SLA
from exposure.report.weeks import IsoWeek, WeekNotStarted
from exposure.store import report_queries as q
from exposure.store.case_queries import case_week, overdue_cases

ACTIONS = ("force_reset", "notify", "none")
PASSWORD_STATUSES = ("live", "tweaked", "unknown", "absent", "stale")
LEAK_TYPES = ("combo", "ulp", "stealer_log", "session_cookie", "breach_record", "feed_alert")
OUTBOX_STATES = ("delivered", "pending", "failed", "dead")
ATTEMPT_OUTCOMES = ("delivered", "retry", "dead", "disabled", "replayed")
TREND_WEEKS = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Headline:
    """The figures compared week over week."""

    new_exposures: int
    customers_affected: int
    live_credentials: int
    customers_to_reset: int
    customers_to_reset_open: int
    customers_to_reset_resolved: int
    resets_requested: int
    resets_confirmed: int
    median_hours_to_reset: float | None
    p90_hours_to_reset: float | None
    sla_breaches: int
    undelivered_events: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    current: float | None
    previous: float | None
    delta: float | None
    percent: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFigure:
    source: str
    runs: int
    incomplete: int
    lines: int
    records: int
    matched: int
    last_success: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaBreach:
    """A forced-reset case open past the SLA; ``age_hours`` runs from ``force_reset_at``."""

    case_id: str
    customer_id: str
    force_reset_at: datetime
    age_hours: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendPoint:
    week: IsoWeek
    new_exposures: int
    confirmed_resets: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WeeklyFigures:
    """Everything the report shows; :meth:`as_json` is the report's JSON file."""

    week: IsoWeek
    timezone: str
    start: datetime
    end: datetime
    generated_at: datetime
    # The moment figures run to: the week's end, or now for the week in progress.
    as_of: datetime
    in_progress: bool
    # The monitor's first recorded activity (exposure or ingest), None before any.
    first_activity: datetime | None
    headline: Headline
    previous: Headline
    by_action: Mapping[str, int]
    by_password_status: Mapping[str, int]
    by_leak_type: Mapping[str, int]
    stealer_domains: Sequence[tuple[str, int]]
    sla_breaches: Sequence[SlaBreach]
    sources: Sequence[SourceFigure]
    connectors: Sequence[q.ConnectorWeek]
    delivery_by_state: Mapping[str, int]
    attempts_by_outcome: Mapping[str, int]
    trend: Sequence[TrendPoint]

    @property
    def notice(self) -> str | None:
        """Why an empty report is empty: ``no_data`` (nothing ingested yet) or ``before_data``
        (the monitor's first data came after this week); None when the week had data."""
        if self.first_activity is None:
            return "no_data"
        if self.first_activity >= self.end:
            return "before_data"
        return None

    def changes(self) -> dict[str, Change]:
        """Each headline figure against the previous week (percent is None from zero)."""
        result: dict[str, Change] = {}
        for f in fields(Headline):
            now, before = getattr(self.headline, f.name), getattr(self.previous, f.name)
            delta = None if now is None or before is None else now - before
            percent = None if delta is None or not before else 100.0 * delta / before
            result[f.name] = Change(current=now, previous=before, delta=delta, percent=percent)
        return result

    def as_json(self) -> JsonObject:
        """Every figure, JSON-ready: times as ISO 8601 UTC, weeks as ``YYYY-Www``."""
        return {
            "week": str(self.week),
            "timezone": self.timezone,
            "period": {"start": iso_utc(self.start), "end": iso_utc(self.end)},
            "generated_at": iso_utc(self.generated_at),
            "in_progress": self.in_progress,
            "as_of": iso_utc(self.as_of),
            "notice": self.notice,
            "headline": asdict(self.headline),
            "previous_week": {"week": str(self.week.shift(-1)), **asdict(self.previous)},
            "changes": {name: asdict(change) for name, change in self.changes().items()},
            "new_exposures_by_action": dict(self.by_action),
            "new_exposures_by_password_status": dict(self.by_password_status),
            "new_exposures_by_leak_type": dict(self.by_leak_type),
            "stealer_log_sites": [
                {"site_domain": d, "exposures": n} for d, n in self.stealer_domains
            ],
            "sla": {
                "max_age_hours": RESET_SLA.total_seconds() / 3600,
                "breaches": [
                    {**asdict(b), "force_reset_at": iso_utc(b.force_reset_at)}
                    for b in self.sla_breaches
                ],
            },
            "sources": [{**asdict(s), "last_success": _iso(s.last_success)} for s in self.sources],
            "connectors": [
                {**asdict(c), "last_success": _iso(c.last_success)} for c in self.connectors
            ],
            "delivery": {
                "events_by_state": dict(self.delivery_by_state),
                "attempts_by_outcome": dict(self.attempts_by_outcome),
            },
            "trend": [
                {
                    "week": str(p.week),
                    "new_exposures": p.new_exposures,
                    "confirmed_resets": p.confirmed_resets,
                }
                for p in self.trend
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _rounded(hours: float | None) -> float | None:
    # To the 0.36 s: enough for any SLA, and free of binary-fraction noise in the JSON.
    return None if hours is None else round(hours, 4)


def _complete(counts: Mapping[str, int], known: Sequence[str]) -> dict[str, int]:
    """Known keys first (zero when absent, so every language shows every row), then others."""
    result = {key: counts.get(key, 0) for key in known}
    result.update({k: v for k, v in sorted(counts.items()) if k not in result})
    return result


async def _headline(
    conn: AsyncConnection, start: datetime, end: datetime, as_of: datetime
) -> Headline:
    totals = await q.new_exposure_totals(conn, start, end)
    cases = await case_week(conn, start, end)
    hours = list(cases.reset_hours)
    delivery = await q.outbox_created_by_state(conn, start, end)
    return Headline(
        new_exposures=totals.exposures,
        customers_affected=totals.customers,
        live_credentials=totals.live,
        customers_to_reset=cases.asked,
        customers_to_reset_open=cases.open_at_end,
        customers_to_reset_resolved=cases.resolved,
        resets_requested=await q.reset_requests(conn, start, end),
        resets_confirmed=len(hours),
        median_hours_to_reset=_rounded(percentile(hours, 0.5)),
        p90_hours_to_reset=_rounded(percentile(hours, 0.9)),
        sla_breaches=len(await overdue_cases(conn, as_of, RESET_SLA)),
        undelivered_events=delivery.get("failed", 0) + delivery.get("dead", 0),
    )


def _counter(stats: JsonObject, name: str) -> int:
    """One counter of an ingest run's stats (0 before the run committed any)."""
    value = stats.get(name, 0)
    return int(value) if isinstance(value, int | float | str) else 0


def _sources(
    runs: Sequence[q.IngestRunRow], last: Mapping[str, datetime | None]
) -> list[SourceFigure]:
    result = []
    for source in sorted(last):
        mine = [r for r in runs if r.source == source]
        result.append(
            SourceFigure(
                source=source,
                runs=len(mine),
                incomplete=sum(1 for r in mine if not r.completed),
                lines=sum(_counter(r.stats, "lines") for r in mine),
                records=sum(_counter(r.stats, "records") for r in mine),
                matched=sum(_counter(r.stats, "matched_records") for r in mine),
                last_success=last[source],
            )
        )
    return result


async def compute_figures(
    conn: AsyncConnection, week: IsoWeek, tz: ZoneInfo, *, now: datetime
) -> WeeklyFigures:
    """Run every query for ``week`` (boundaries in ``tz``) and assemble the figures, as of
    ``now`` for the week in progress; a week that starts after ``now`` is refused."""
    start, end = week.bounds(tz)
    if start > now:
        raise WeekNotStarted(week, IsoWeek.containing(now, tz))
    # Every figure covers [start, until): the whole week, or the week so far.
    until = min(end, now)
    previous_start, previous_end = week.shift(-1).bounds(tz)
    trend_weeks = [week.shift(offset) for offset in range(-(TREND_WEEKS - 1), 1)]
    trend_bounds = [w.bounds(tz) for w in trend_weeks]
    trend_bounds[-1] = (start, until)
    new_counts = await q.weekly_counts(conn, "new", trend_bounds)
    reset_counts = await q.weekly_counts(conn, "reset", trend_bounds)
    breaches = await overdue_cases(conn, until, RESET_SLA)
    domains = await q.stealer_site_domains(conn, start, until)
    return WeeklyFigures(
        week=week,
        timezone=tz.key,
        start=start,
        end=end,
        generated_at=now,
        as_of=until,
        in_progress=now < end,
        first_activity=await q.first_activity(conn),
        headline=await _headline(conn, start, until, until),
        previous=await _headline(conn, previous_start, previous_end, previous_end),
        by_action=_complete(await q.count_new_by(conn, "action", start, until), ACTIONS),
        by_password_status=_complete(
            await q.count_new_by(conn, "password_status", start, until), PASSWORD_STATUSES
        ),
        by_leak_type=_complete(await q.count_new_by(conn, "leak_type", start, until), LEAK_TYPES),
        stealer_domains=sorted(domains.items(), key=lambda item: (-item[1], item[0])),
        sla_breaches=[
            SlaBreach(
                case_id=b.case_id,
                customer_id=b.customer_id,
                force_reset_at=b.force_reset_at,
                age_hours=(until - b.force_reset_at).total_seconds() / 3600,
            )
            for b in breaches
        ],
        sources=_sources(
            await q.ingest_runs_in(conn, start, until), await q.ingest_last_success(conn, until)
        ),
        connectors=await q.connector_weeks(conn, start, until),
        delivery_by_state=_complete(
            await q.outbox_created_by_state(conn, start, until), OUTBOX_STATES
        ),
        attempts_by_outcome=_complete(
            await q.attempts_by_outcome(conn, start, until), ATTEMPT_OUTCOMES
        ),
        trend=[
            TrendPoint(week=w, new_exposures=n, confirmed_resets=r)
            for w, n, r in zip(trend_weeks, new_counts, reset_counts, strict=True)
        ],
    )
