"""Business calendars and the B / D functions of AFTERSALES §3.3."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.bundles._yaml import parse_yaml
from engine.bundles.limits import DEFAULT_LIMITS
from engine.errors import DefinitionError
from engine.flows.calendar import (
    BusinessCalendar,
    CalendarError,
    add_business,
    business_seconds,
)
from engine.flows.calendar_spec import CalendarSpec, check_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEMPLATES = Path(__file__).resolve().parents[3] / "templates" / "aftersales" / "calendars"
H = 3600


def load(name: str) -> BusinessCalendar:
    data, problems = parse_yaml((TEMPLATES / f"{name}.yaml").read_text(), DEFAULT_LIMITS)
    assert not problems
    return BusinessCalendar(CalendarSpec.model_validate(data))


@pytest.fixture(scope="module")
def cn() -> BusinessCalendar:
    return load("cn_8x5")


def sh(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


# (start, business seconds, expected D) on CN-8x5, 2025.
D_CASES = [
    (sh(2025, 3, 3, 9), 0, sh(2025, 3, 3, 9)),  # D(t, 0) = t
    (sh(2025, 3, 3, 20), 0, sh(2025, 3, 3, 20)),  # D(t, 0) = t even outside hours
    (sh(2025, 3, 3, 9), 3 * H, sh(2025, 3, 3, 12)),  # runs out at an interval end: 12:00
    (sh(2025, 3, 3, 9), 3 * H + 1, sh(2025, 3, 3, 13, 0, 1)),
    (sh(2025, 3, 3, 11), 2 * H, sh(2025, 3, 3, 14)),  # lunch skipped
    (sh(2025, 3, 3, 12, 30), 60, sh(2025, 3, 3, 13, 1)),  # start in lunch: next interval
    (sh(2025, 3, 3, 7), 30 * 60, sh(2025, 3, 3, 9, 30)),  # start before hours
    (sh(2025, 3, 3, 19), 30 * 60, sh(2025, 3, 4, 9, 30)),  # start after hours
    (sh(2025, 3, 3, 17), 2 * H, sh(2025, 3, 4, 10)),  # overnight
    (sh(2025, 3, 7, 17), 2 * H, sh(2025, 3, 10, 10)),  # Friday → Monday
    (sh(2025, 3, 3, 9), 8 * H, sh(2025, 3, 3, 18)),  # a full day ends at 18:00
    (sh(2025, 1, 27, 17), 2 * H, sh(2025, 2, 5, 10)),  # Spring Festival 01-28..02-04
    (sh(2025, 2, 7, 17), 2 * H, sh(2025, 2, 8, 10)),  # Sat 02-08 is a make-up day
    (sh(2025, 9, 30, 17), 2 * H, sh(2025, 10, 9, 10)),  # National Day 10-01..10-08
    (sh(2025, 10, 10, 17, 30), 1 * H, sh(2025, 10, 11, 9, 30)),  # make-up Sat 10-11
    (sh(2024, 12, 31, 17), 2 * H, sh(2025, 1, 2, 10)),  # New Year
]


@pytest.mark.parametrize(("start", "seconds", "expected"), D_CASES)
def test_add_business_examples(
    cn: BusinessCalendar, start: datetime, seconds: int, expected: datetime
) -> None:
    assert add_business(cn, start, seconds) == expected


B_CASES = [
    (sh(2025, 3, 3, 9), sh(2025, 3, 3, 18), 8 * H),
    (sh(2025, 3, 3, 11), sh(2025, 3, 3, 14), 2 * H),
    (sh(2025, 3, 3, 12, 10), sh(2025, 3, 3, 12, 50), 0),  # inside lunch
    (sh(2025, 3, 8, 0), sh(2025, 3, 10, 0), 0),  # a weekend
    (sh(2025, 1, 27, 9), sh(2025, 2, 10, 9), 40 * H),  # 01-27, 02-05..07, Sat 02-08
    (sh(2025, 3, 3, 9), sh(2025, 3, 10, 9), 40 * H),
    (sh(2025, 3, 3, 9), sh(2025, 3, 3, 9), 0),
]


@pytest.mark.parametrize(("a", "b", "expected"), B_CASES)
def test_business_seconds_examples(
    cn: BusinessCalendar, a: datetime, b: datetime, expected: int
) -> None:
    assert business_seconds(cn, a, b) == expected
    assert business_seconds(cn, b, a) == -expected


def test_precedence_override_beats_weekly_holiday_beats_weekly(cn: BusinessCalendar) -> None:
    assert cn.local_spans(date(2025, 2, 8)) == ((540, 720), (780, 1080))  # make-up Saturday
    assert cn.local_spans(date(2025, 10, 8)) == ()  # a Wednesday holiday
    assert cn.local_spans(date(2025, 10, 9)) == ((540, 720), (780, 1080))
    assert cn.local_spans(date(2025, 10, 12)) == ()  # an ordinary Sunday


def test_seeded_2025_rows_match_the_spec(cn: BusinessCalendar) -> None:
    holidays = {
        date(2025, 1, 1),
        *(date(2025, 1, 28) + timedelta(d) for d in range(8)),
        date(2025, 4, 4),
        date(2025, 4, 5),
        date(2025, 4, 6),
        *(date(2025, 5, 1) + timedelta(d) for d in range(5)),
        date(2025, 5, 31),
        date(2025, 6, 1),
        date(2025, 6, 2),
        *(date(2025, 10, 1) + timedelta(d) for d in range(8)),
    }
    makeup = {
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 4, 27),
        date(2025, 9, 28),
        date(2025, 10, 11),
    }
    day = date(2025, 1, 1)
    while day.year == 2025:
        worked = bool(cn.local_spans(day))
        expected = day in makeup or (day.isoweekday() <= 5 and day not in holidays)
        assert worked == expected, day
        day += timedelta(days=1)


def test_seeded_make_up_days_are_weekends() -> None:
    data, _ = parse_yaml((TEMPLATES / "cn_8x5.yaml").read_text(), DEFAULT_LIMITS)
    spec = CalendarSpec.model_validate(data)
    assert {o.date.year for o in spec.workday_overrides} == {2024, 2025, 2026}
    assert all(o.date.isoweekday() >= 6 for o in spec.workday_overrides)


def test_always_open_is_wall_clock() -> None:
    cal = load("always")
    start = sh(2025, 10, 1, 23, 30)
    assert add_business(cal, start, 3 * H) == sh(2025, 10, 2, 2, 30)
    assert business_seconds(cal, start, sh(2025, 10, 3, 23, 30)) == 48 * H


def test_results_are_utc_and_naive_input_is_refused(cn: BusinessCalendar) -> None:
    result = add_business(cn, sh(2025, 3, 3, 9), 60)
    assert result.tzinfo is UTC
    with pytest.raises(CalendarError) as caught:
        add_business(cn, datetime(2025, 3, 3, 9), 60)
    assert caught.value.code == "calendar.naive-datetime"
    with pytest.raises(CalendarError):
        add_business(cn, result, -1)


def test_daylight_saving_days_count_real_time() -> None:
    # New York springs forward on 2025-03-09 at 02:00: 00:00–06:00 holds 5 real hours.
    cal = BusinessCalendar(
        CalendarSpec.model_validate(
            {
                "key": "ny",
                "timezone": "America/New_York",
                "weekly_hours": [
                    {"weekday": d, "start": "00:00", "end": "06:00"} for d in range(1, 8)
                ],
            }
        )
    )
    ny = ZoneInfo("America/New_York")
    day_start = datetime(2025, 3, 9, tzinfo=ny)
    assert business_seconds(cal, day_start, datetime(2025, 3, 9, 12, tzinfo=ny)) == 5 * H
    assert add_business(cal, day_start, 3 * H) == datetime(2025, 3, 9, 4, tzinfo=ny)
    # Falls back on 2025-11-02: 00:00–06:00 holds 7 real hours.
    back = datetime(2025, 11, 2, tzinfo=ny)
    assert business_seconds(cal, back, datetime(2025, 11, 2, 12, tzinfo=ny)) == 7 * H


def _random_instant(rng: random.Random) -> datetime:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return base + timedelta(
        seconds=rng.randrange(0, 3 * 365 * 86_400), microseconds=rng.randrange(0, 10**6)
    )


def test_d_then_b_round_trips_and_is_monotonic(cn: BusinessCalendar) -> None:
    rng = random.Random(20251001)
    for _ in range(2_000):
        t = _random_instant(rng)
        s = rng.choice([0, 1, 60, 3 * H, 8 * H, 40 * H]) + rng.randrange(0, 20 * H)
        d = add_business(cn, t, s)
        assert d >= t
        assert business_seconds(cn, t, d) == s
        assert add_business(cn, t, s + 1) > d
        if s:  # a deadline always lands inside or at the end of a working interval
            assert business_seconds(cn, d - timedelta(seconds=1), d) > 0


def test_b_is_additive(cn: BusinessCalendar) -> None:
    rng = random.Random(7)
    for _ in range(1_000):
        a, b, c = sorted(_random_instant(rng) for _ in range(3))
        whole = business_seconds(cn, a, b) + business_seconds(cn, b, c)
        assert business_seconds(cn, a, c) == pytest.approx(whole, abs=1e-6)
        assert 0 <= business_seconds(cn, a, b) <= (b - a).total_seconds()


def _problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in check_calendar(CalendarSpec.model_validate(data))]


def test_definition_errors_are_all_reported_with_paths() -> None:
    data = {
        "key": "bad",
        "timezone": "Mars/Olympus",
        "weekly_hours": [
            {"weekday": 1, "start": "09:00", "end": "12:00"},
            {"weekday": 1, "start": "11:00", "end": "14:00"},
            {"weekday": 2, "start": "18:00", "end": "09:00"},
        ],
        "holidays": [
            {"date": "2025-10-01", "until": "2025-10-08"},
            {"date": "2025-05-02", "until": "2025-05-01"},
        ],
        "workday_overrides": [
            {"date": "2025-10-03"},
            {"date": "2025-10-11"},
            {"date": "2025-10-11"},
        ],
    }
    assert sorted(_problems(data)) == [
        ("calendar.date-conflict", "/workday_overrides/0/date"),
        ("calendar.duplicate-date", "/workday_overrides/2/date"),
        ("calendar.empty-interval", "/weekly_hours/2/end"),
        ("calendar.invalid-range", "/holidays/1/until"),
        ("calendar.overlapping-hours", "/weekly_hours/1"),
        ("calendar.unknown-timezone", "/timezone"),
    ]
    with pytest.raises(DefinitionError):
        BusinessCalendar(CalendarSpec.model_validate(data))


def test_always_open_with_hours_and_no_hours_at_all_are_errors() -> None:
    hours = [{"weekday": 1, "start": "09:00", "end": "12:00"}]
    assert _problems({"key": "x", "always_open": True, "weekly_hours": hours}) == [
        ("calendar.always-open-conflict", "/weekly_hours")
    ]
    assert _problems({"key": "x"}) == [("calendar.no-hours", "/weekly_hours")]


def test_make_up_day_with_own_hours() -> None:
    cal = BusinessCalendar(
        CalendarSpec.model_validate(
            {
                "key": "x",
                "weekly_hours": [{"weekday": 1, "start": "09:00", "end": "17:00"}],
                "workday_overrides": [
                    {"date": "2025-03-08", "hours": [{"start": "10:00", "end": "12:00"}]},
                    {"date": "2025-03-09"},
                ],
            }
        )
    )
    assert cal.local_spans(date(2025, 3, 8)) == ((600, 720),)
    assert cal.local_spans(date(2025, 3, 9)) == ((540, 1020),)  # Monday's hours
    assert add_business(cal, sh(2025, 3, 8, 0), 3 * H) == sh(2025, 3, 9, 10)


def _walked_seconds(cal: BusinessCalendar, a: datetime, b: datetime) -> float:
    """B by walking local days one by one: the reference the day table must agree with."""
    total = 0.0
    day = a.astimezone(cal.tz).date() - timedelta(days=1)
    while day <= b.astimezone(cal.tz).date():
        for start, end in cal.local_spans(day):
            lo = datetime.combine(day, datetime.min.time(), tzinfo=cal.tz) + timedelta(
                minutes=start
            )
            hi = datetime.combine(day, datetime.min.time(), tzinfo=cal.tz) + timedelta(minutes=end)
            overlap = (min(hi, b) - max(lo, a)).total_seconds()
            total += max(overlap, 0.0)
        day += timedelta(days=1)
    return total


def test_day_table_agrees_with_a_day_walk_over_long_spans_in_any_order() -> None:
    cal = load("cn_8x5")  # a fresh table, grown backwards and forwards by the random order
    rng = random.Random(99)
    for _ in range(300):
        a, b = sorted(_random_instant(rng) for _ in range(2))
        assert business_seconds(cal, a, b) == pytest.approx(_walked_seconds(cal, a, b), abs=1e-6)
    far = add_business(cal, sh(2024, 1, 2, 9), 2_000 * H)  # 250 working days
    assert business_seconds(cal, sh(2024, 1, 2, 9), far) == 2_000 * H
