"""The cron reader, durations and the runtime's pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import EngineError
from engine.flows.cron import parse_cron
from engine.flows.runtime import as_moment, duration

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("*/15 * * * *", datetime(2026, 11, 23, 9, 45, tzinfo=UTC)),
        ("0 9 * * *", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        ("0 8 * * 1-5", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
        ("0 8 * * 0", datetime(2026, 11, 29, 8, 0, tzinfo=UTC)),
        ("0 8 * * 7", datetime(2026, 11, 29, 8, 0, tzinfo=UTC)),
        ("0 0 1 * *", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
        ("30 0 9 * * *", datetime(2026, 11, 24, 9, 0, 30, tzinfo=UTC)),
        ("0 12 1 * 3", datetime(2026, 11, 25, 12, 0, tzinfo=UTC)),  # day 1 or a Wednesday
    ],
)
def test_next_firing(cron: str, expected: datetime) -> None:
    assert parse_cron(cron).next_after(AT) == expected


def test_next_firing_in_a_time_zone() -> None:
    found = parse_cron("0 9 * * *").next_after(AT, "Asia/Shanghai")
    assert found == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("cron", ["* * *", "61 * * * *", "a * * * *", "0 0 31 2 *", "*/0 * * * *"])
def test_bad_cron(cron: str) -> None:
    with pytest.raises(EngineError) as err:
        parse_cron(cron).next_after(AT)
    assert err.value.code == "flow.bad-cron"


def test_durations_and_moments() -> None:
    assert duration("PT4H") == timedelta(hours=4)
    assert duration("P1DT30M") == timedelta(days=1, minutes=30)
    assert duration("P2W") == timedelta(days=14)
    assert as_moment(AT.date()) == datetime(2026, 11, 23, tzinfo=UTC)
    assert as_moment(AT) is AT
