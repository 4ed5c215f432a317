"""The aware-UTC column type binds like SQLAlchemy's own conversion, once per moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from exposure.store.types import UTCDateTime


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_bind_matches_the_unmemoised_conversion(dialect: Dialect) -> None:
    column = UTCDateTime()
    bind = column.bind_processor(dialect)
    plain = TypeDecorator.bind_processor(column, dialect)
    assert bind is not None and plain is not None
    moment = datetime(2025, 4, 1, 9, 30, tzinfo=UTC)
    same_moment_in_tokyo = moment.astimezone(timezone(timedelta(hours=9)))
    later = moment + timedelta(microseconds=1)
    for value in (moment, moment, same_moment_in_tokyo, later, None, moment, later, later):
        assert bind(value) == plain(value)
    assert bind(moment) != bind(later)


def test_bind_still_refuses_a_naive_datetime_after_an_aware_one() -> None:
    bind = UTCDateTime().bind_processor(sqlite.dialect())
    assert bind is not None
    bind(datetime(2025, 4, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2025, 4, 1))  # noqa: DTZ001 - naive on purpose
