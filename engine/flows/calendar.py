"""Business time over a calendar: B(a, b) and D(t, s) of AFTERSALES §3.3.

`business_seconds(cal, a, b)` sums the overlaps of [a, b) with the working intervals;
`add_business(cal, t, s)` walks the intervals from t until s seconds are used up. A start outside
hours counts from the next interval, D(t, 0) = t, and when s runs out exactly at an interval's
end the result is that end (12:00, not 13:00 after lunch).

Instants are handled as integer microseconds since the epoch so that D then B round-trips
exactly. Each local date's intervals are converted to UTC once (zoneinfo, so a DST change
shortens or lengthens that day's intervals in real time) and cached on the calendar.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.errors import EngineError
from engine.flows.calendar_spec import CalendarSpec, Hours, minutes_of, validate_calendar

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_PER_SECOND = 1_000_000
_MAX_IDLE_DAYS = 3_700  # a walk finding no working time for ~10 years means there is none

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
        return (_EPOCH + timedelta(microseconds=micros)).astimezone(self.tz).date()

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
    total = 0
    day = cal.local_date(start) - timedelta(days=1)  # a late interval may spill past midnight
    last = cal.local_date(end)
    while day <= last:
        for a, b in cal.intervals(day):
            if b > start and a < end:
                total += min(b, end) - max(a, start)
        day += timedelta(days=1)
    return total


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
    day = cal.local_date(start) - timedelta(days=1)
    idle = 0
    while True:
        worked = False
        for a, b in cal.intervals(day):
            if b <= start:
                continue
            worked = True
            begin = max(a, start)
            if remaining <= b - begin:
                return _datetime(begin + remaining)
            remaining -= b - begin
        idle = 0 if worked else idle + 1
        if idle > _MAX_IDLE_DAYS or not cal.has_time_after(day):
            raise CalendarError(
                f"calendar {cal.key!r} has no business time after {day}",
                code="calendar.no-business-time",
            )
        day += timedelta(days=1)


__all__ = ["BusinessCalendar", "CalendarError", "Interval", "add_business", "business_seconds"]
