from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from exposure.errors import ConfigurationError
from exposure.runtime.scheduler import trigger_for

TOKYO = ZoneInfo("Asia/Tokyo")


def test_weekly_report_fires_monday_eight_in_tokyo() -> None:
    trigger = trigger_for("0 8 * * mon", TOKYO, "EXPOSURE_REPORT_SCHEDULE")
    # Sunday 23:30 JST: the next run is the next morning, 08:00 JST (Sunday 23:00 UTC).
    sunday_night = datetime(2025, 5, 18, 23, 30, tzinfo=TOKYO)
    fire = trigger.get_next_fire_time(None, sunday_night)
    assert fire == datetime(2025, 5, 19, 8, 0, tzinfo=TOKYO)
    assert fire.utcoffset() is not None and fire.weekday() == 0


def test_intervals() -> None:
    trigger = trigger_for("every 15m", TOKYO, "EXPOSURE_HTTP_FEED_SCHEDULE")
    start = datetime(2025, 5, 19, 8, 0, tzinfo=TOKYO)
    first = trigger.get_next_fire_time(None, start)
    assert first is not None
    assert (trigger.get_next_fire_time(first, first) - first).total_seconds() == 900


@pytest.mark.parametrize("text", ["sometimes", "every 0m", "every 5d", "61 8 * * mon"])
def test_bad_schedules_name_the_variable(text: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        trigger_for(text, TOKYO, "EXPOSURE_REPORT_SCHEDULE")
    assert caught.value.variable == "EXPOSURE_REPORT_SCHEDULE"
