"""Business time over a calendar: B(a, b) and D(t, s) of AFTERSALES §3.3.

`business_seconds(cal, a, b)` sums the overlaps of [a, b) with the working intervals;
`add_business(cal, t, s)` walks the intervals from t until s seconds are used up. A start outside
hours counts from the next interval, D(t, 0) = t, and when s runs out exactly at an interval's
end the result is that end (12:00, not 13:00 after lunch).

Instants are handled as integer microseconds since the epoch so that D then B round-trips
exactly. Each local date's intervals are converted to UTC once (zoneinfo, so a DST change
shortens or lengthens that day's intervals in real time) into a lazily grown table of days with
the running total of business time before each day: B is two look-ups and D a binary search,
whatever the span.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.errors import EngineError
from engine.flows.calendar_spec import CalendarSpec, Hours, minutes_of, validate_calendar

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_PER_SECOND = 1_000_000
_MAX_IDLE_DAYS = 3_700  # a walk finding no working time for ~10 years means there is none
_MARGIN_DAYS = 31  # the day table grows by at least this much at its start

Interval = tuple[int, int]  # [start, end) in epoch microseconds
LocalSpan = tuple[int, int]  # [start, end) in minutes after local midnight


class CalendarError(EngineError):
    code = "calendar.error"


def _spans(rows: tuple[Hours, ...]) -> tuple[LocalSpan, ...]:
    return tuple(sorted((minutes_of(r.start), minutes_of(r.end)) for r in rows))


class BusinessCalendar:
    """A checked calendar ready for business-time arithmetic; immutable apart from its cache."""

    __slots__ = (
        "key",
        "tz",
        "always_open",
        "_weekly",
        "_holidays",
        "_overrides",
        "_days",
        "_last_special",
        "_table",
        "_lock",
    )

    def __init__(self, spec: CalendarSpec) -> None:
        validate_calendar(spec)
        self.key = spec.key
        self.tz = ZoneInfo(spec.timezone)
        self.always_open = spec.always_open
        weekly: dict[int, list[Hours]] = {day: [] for day in range(1, 8)}
        for row in spec.weekly_hours:
            weekly[row.weekday].append(row)
        self._weekly = {day: _spans(tuple(rows)) for day, rows in weekly.items()}
        self._holidays = frozenset(day for h in spec.holidays for day in h.days())
        self._overrides = {
            o.date: _spans(o.hours) if o.hours else self._weekly[1] for o in spec.workday_overrides
        }
        special = [*self._holidays, *self._overrides]
        self._last_special = max(special) if special else date.min
        self._days: dict[date, tuple[Interval, ...]] = {}
        # (first day's ordinal, business micros before each day, each day's intervals)
        self._table: tuple[int, list[int], list[tuple[Interval, ...]]] = (0, [0], [])
        self._lock = threading.Lock()

    def local_spans(self, day: date) -> tuple[LocalSpan, ...]:
        """The day's working intervals in local minutes: override > holiday > weekly."""
        if self.always_open:
            return ((0, 1440),)
        if day in self._overrides:
            return self._overrides[day]
        if day in self._holidays:
            return ()
        return self._weekly[day.isoweekday()]

    def intervals(self, day: date) -> tuple[Interval, ...]:
        """The local date's working intervals as epoch microseconds (cached)."""
        found = self._days.get(day)
        if found is None:
            found = tuple(
                (self._instant(day, start), self._instant(day, end))
                for start, end in self.local_spans(day)
            )
            found = tuple((a, b) for a, b in found if a < b)  # a span lost in a DST gap
            self._days[day] = found
        return found

    def _instant(self, day: date, minutes: int) -> int:
        if minutes == 1440:
            day, minutes = day + timedelta(days=1), 0
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.tz)
        return (local - _EPOCH) // _MICRO

    def local_date(self, micros: int) -> date:
        # whole seconds, floored, keep the date exact next to midnight
        return datetime.fromtimestamp(micros // _PER_SECOND, self.tz).date()

    def table(self, first: int, last: int) -> tuple[int, list[int], list[tuple[Interval, ...]]]:
        """The day table covering the ordinals first..last: (first ordinal held, business
        micros before each day, each day's intervals). It only grows: appending in place is
        safe for readers holding it; a growth at the start swaps in new lists."""
        base, totals, days = self._table
        if days and base <= first and last < base + len(days):
            return self._table
        with self._lock:
            base, totals, days = self._table
            if not days:
                base = first - _MARGIN_DAYS
            elif first < base:
                new_base = first - _MARGIN_DAYS
                days = [self.intervals(date.fromordinal(n)) for n in range(new_base, base)] + days
                base, totals = new_base, [0]
                for intervals in days:
                    totals.append(totals[-1] + sum(b - a for a, b in intervals))
            while base + len(days) <= max(first, last):
                intervals = self.intervals(date.fromordinal(base + len(days)))
                days.append(intervals)
                totals.append(totals[-1] + sum(b - a for a, b in intervals))
            self._table = (base, totals, days)
            return self._table

    def before(self, micros: int, ordinal: int | None = None) -> int:
        """Business microseconds from the table's start up to the instant `micros` (whose local
        date's ordinal the caller may already know)."""
        if ordinal is None:
            ordinal = self.local_date(micros).toordinal()
        base, totals, days = self.table(ordinal, ordinal)
        index = ordinal - base
        total = totals[index]
        for a, b in days[index]:
            if a >= micros:
                break
            total += min(b, micros) - a
        return total

    def has_time_after(self, day: date) -> bool:
        """Whether any working time can follow `day` (false only for a calendar of exceptions)."""
        return self.always_open or any(self._weekly.values()) or day <= self._last_special


def _micros(value: datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise CalendarError(
            f"business time needs an aware datetime, got {value.isoformat()}",
            code="calendar.naive-datetime",
        )
    return (value - _EPOCH) // _MICRO


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def business_seconds(cal: BusinessCalendar, a: datetime, b: datetime) -> float:
    """B(a, b): business seconds in [a, b); negative, −B(b, a), when b is before a."""
    start, end = _micros(a), _micros(b)
    if end < start:
        return -business_seconds(cal, b, a)
    return _business_micros(cal, start, end) / _PER_SECOND


def _business_micros(cal: BusinessCalendar, start: int, end: int) -> int:
    if start >= end:
        return 0
    if cal.always_open:
        return end - start
    first, last = cal.local_date(start).toordinal(), cal.local_date(end).toordinal()
    cal.table(first, last)  # one growth covering both ends
    return cal.before(end, last) - cal.before(start, first)


def add_business(cal: BusinessCalendar, t: datetime, seconds: float) -> datetime:
    """D(t, s): the instant s business seconds after t (UTC). D(t, 0) = t."""
    if seconds < 0:
        raise CalendarError(
            "business seconds to add must not be negative", code="calendar.negative-duration"
        )
    start = _micros(t)
    remaining = round(seconds * _PER_SECOND)
    if remaining == 0:
        return t
    if cal.always_open:
        return _datetime(start + remaining)
    ordinal = cal.local_date(start).toordinal()
    goal = cal.before(start, ordinal) + remaining
    base, totals, days = cal.table(ordinal, ordinal)
    idle = 0
    while totals[-1] < goal:  # grow the table a month at a time until it holds the goal
        last = base + len(days) - 1
        before = totals[-1]
        base, totals, days = cal.table(last + 1, last + _MARGIN_DAYS)
        idle = idle + _MARGIN_DAYS if totals[-1] == before else 0
        if idle > _MAX_IDLE_DAYS or not cal.has_time_after(date.fromordinal(last)):
            raise CalendarError(
                f"calendar {cal.key!r} has no business time after {date.fromordinal(last)}",
                code="calendar.no-business-time",
            )
    index = bisect_left(totals, goal) - 1  # the first day whose end reaches the goal
    left = goal - totals[index]
    for a, b in days[index]:
        if left <= b - a:  # `<=`: running out exactly at an interval's end gives that end
            return _datetime(a + left)
        left -= b - a
    raise AssertionError("the day table and its totals disagree")


__all__ = ["BusinessCalendar", "CalendarError", "Interval", "add_business", "business_seconds"]
