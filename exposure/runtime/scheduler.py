"""The daemon's schedule: the only module that imports APScheduler (3.x).

Jobs are data: a name, a trigger (a crontab line or an interval in seconds) and a coroutine
function. Each job runs at most once at a time and missed runs collapse into one, so a slow
connector run is never stacked behind itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectors.base import parse_schedule
from exposure.errors import ConfigurationError
from exposure.store.reconnect import DatabaseUnavailable, describe, is_transient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """``schedule``: a five-field crontab line (``0 8 * * mon``) or ``every <N>s|m|h``."""

    name: str
    schedule: str
    run: Callable[[], Awaitable[object]]
    setting: str  # the variable that sets the schedule, named in configuration errors
    run_at_start: bool = False
    quiet: bool = False  # frequent jobs log their runs at DEBUG, not INFO


def trigger_for(schedule: str, timezone: ZoneInfo, setting: str) -> CronTrigger | IntervalTrigger:
    """The APScheduler trigger of a schedule in the grammar of :func:`parse_schedule`."""
    parsed = parse_schedule(schedule, setting)
    if parsed.interval_seconds is not None:
        return IntervalTrigger(seconds=parsed.interval_seconds, timezone=timezone)
    try:
        return CronTrigger.from_crontab(parsed.text, timezone=timezone)
    except ValueError as error:  # fields of the right shape but out of range (minute 61)
        raise ConfigurationError(setting, f"not a crontab line ({error})") from None


class _StillRunning(logging.Filter):
    """Drops APScheduler's warning that a tick was skipped because the job's previous run is
    still going: one run at a time is the design (a chunk takes longer than the chunks job's
    two-second tick), not something to warn about every two seconds."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_STILL_RUNNING = _StillRunning()


class Schedule:
    """An AsyncIOScheduler running :class:`Job` coroutines on the current event loop."""

    def __init__(self, jobs: Sequence[Job], timezone: ZoneInfo) -> None:
        logging.getLogger("apscheduler.scheduler").addFilter(_STILL_RUNNING)  # idempotent
        self._scheduler = AsyncIOScheduler(timezone=timezone)
        for job in jobs:
            trigger = trigger_for(job.schedule, timezone, job.setting)
            options = {"next_run_time": datetime.now(timezone)} if job.run_at_start else {}
            self._scheduler.add_job(
                _logged(job),
                trigger,
                id=job.name,
                name=job.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
                **options,
            )
            log.info("job %s scheduled (%s)", job.name, job.schedule)

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        """Stop starting jobs; running ones go on (the daemon waits for them, then closes)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def close(self) -> None:
        """Shut the scheduler down; a job still running is cancelled (APScheduler's executor
        cancels what it started), so call this once the daemon has waited for them."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)


# After a run that lost its database connection, a job's next runs are skipped for this long,
# doubling per failure in a row up to the cap: an unreachable database is tried now and then,
# not at every tick of a two-second job.
LOST_CONNECTION_BACKOFF = (1.0, 60.0)


def _logged(job: Job) -> Callable[[], Awaitable[None]]:
    # A job that raises is logged by APScheduler's executor and runs again on its trigger;
    # the job's own code records the failure where it belongs (a connector run row). A lost
    # database connection is no bug: one warning line, and the job backs off.
    level = logging.DEBUG if job.quiet else logging.INFO
    failures = 0
    not_before = 0.0

    async def run() -> None:
        nonlocal failures, not_before
        if time.monotonic() < not_before:
            return
        log.log(level, "job %s started", job.name, extra={"job": job.name})
        try:
            await job.run()
        except Exception as error:
            if not is_transient(error) and not isinstance(error, DatabaseUnavailable):
                raise
            failures += 1
            base, cap = LOST_CONNECTION_BACKOFF
            delay = min(cap, base * 2 ** (failures - 1))
            not_before = time.monotonic() + delay
            log.warning(
                "job %s: the database is unavailable (%s); next try in %.0f s or later",
                job.name,
                describe(error) if is_transient(error) else getattr(error, "cause", ""),
                delay,
                extra={"job": job.name},
            )
            return
        failures = 0
        log.log(level, "job %s finished", job.name, extra={"job": job.name})

    return run
