"""A small cron reader for schedule triggers: `minute hour day-of-month month day-of-week`, with
an optional leading seconds field; `*`, lists, ranges and `/steps`; Sunday is 0 or 7.

As in classic cron, when both day fields are restricted a day matching either one fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from engine.errors import EngineError

BAD_CRON = "flow.bad-cron"
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # s m h dom mon dow
_SEARCH_DAYS = 366 * 5


@dataclass(frozen=True, slots=True)
class CronSchedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def next_after(self, moment: datetime, timezone: str | None = None) -> datetime:
        """The first firing strictly after `moment`, as an aware UTC datetime.

        Raises:
            EngineError: `flow.bad-cron` when nothing fires within five years (e.g. 31 Feb).
        """
        zone: tzinfo = ZoneInfo(timezone) if timezone else UTC
        local = moment.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
        day = local.date()
        for _ in range(_SEARCH_DAYS):
            if day.month in self.months and self._day_matches(day.day, day.isoweekday() % 7):
                found = self._first_time(day, local, zone)
                if found is not None:
                    return found.astimezone(UTC)
            day += timedelta(days=1)
        raise EngineError("the cron expression never fires", code=BAD_CRON)

    def _day_matches(self, dom: int, dow: int) -> bool:
        in_days, in_weekdays = dom in self.days, dow in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def _first_time(self, day: date, earliest: datetime, zone: tzinfo) -> datetime | None:
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                for second in sorted(self.seconds):
                    candidate = datetime(
                        day.year, day.month, day.day, hour, minute, second, tzinfo=zone
                    )
                    if candidate >= earliest:
                        return candidate
        return None


def parse_cron(text: str) -> CronSchedule:
    """Read a five- or six-field cron expression.

    Raises:
        EngineError: `flow.bad-cron` with the offending field.
    """
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise EngineError(f"cron needs five or six fields, not {len(parts)}", code=BAD_CRON)
    sets = [_field(part, bounds) for part, bounds in zip(parts, _BOUNDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[5])
    return CronSchedule(
        seconds=sets[0],
        minutes=sets[1],
        hours=sets[2],
        days=sets[3],
        months=sets[4],
        weekdays=weekdays,
        any_day=parts[3] in ("*", "?"),
        any_weekday=parts[5] in ("*", "?"),
    )


def _field(text: str, bounds: tuple[int, int]) -> frozenset[int]:
    low, high = bounds
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span in ("*", "?"):
                start, end = low, high
            elif "-" in span:
                a, b = span.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = int(span)
                end = high if step_text else start
        except ValueError as err:
            raise EngineError(f"cron field {text!r} is not a number", code=BAD_CRON) from err
        if step < 1 or not (low <= start <= end <= high):
            raise EngineError(f"cron field {text!r} is out of {low}-{high}", code=BAD_CRON)
        values.update(range(start, end + 1, step))
    return frozenset(values)


__all__ = ["BAD_CRON", "CronSchedule", "parse_cron"]
