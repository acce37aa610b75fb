"""Date arithmetic shared by the Python evaluator: DATEADD with month clamping and DATEDIF."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

UNITS = ("day", "week", "month", "year", "hour", "minute", "second")
CLOCK_UNITS = {"hour": 3_600, "minute": 60, "second": 1}
_MICROS = {"day": 86_400_000_000, "week": 604_800_000_000}
_MICROS.update({unit: seconds * 1_000_000 for unit, seconds in CLOCK_UNITS.items()})


def as_datetime(value: date) -> datetime:
    """A date as midnight UTC; a datetime converted to UTC (naive ones are taken as UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def add_months(value: date, months: int) -> date:
    """`value` moved by whole months, the day clamped to the target month's last day."""
    total = value.year * 12 + value.month - 1 + months
    year, month = divmod(total, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def date_add(value: date, amount: int, unit: str) -> date:
    """DATEADD: dates stay dates for day/week/month/year and become datetimes for clock units."""
    if unit in ("month", "year"):
        return add_months(value, amount * (12 if unit == "year" else 1))
    if unit in ("day", "week"):
        return value + timedelta(days=amount * (7 if unit == "week" else 1))
    return as_datetime(value) + timedelta(seconds=amount * CLOCK_UNITS[unit])


def date_diff(start: date, end: date, unit: str) -> int:
    """DATEDIF: whole `unit`s from `start` to `end`; truncated toward zero, negative if reversed."""
    a, b = as_datetime(start), as_datetime(end)
    if unit in ("month", "year"):
        months = _whole_months(a, b) if a <= b else -_whole_months(b, a)
        return _truncate(months, 12) if unit == "year" else months
    delta = b - a
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return _truncate(micros, _MICROS[unit])


def _whole_months(a: datetime, b: datetime) -> int:
    months = (b.year - a.year) * 12 + b.month - a.month
    if (b.day, b.timetz()) < (a.day, a.timetz()):
        months -= 1
    return months


def _truncate(value: int, divisor: int) -> int:
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient


__all__ = ["CLOCK_UNITS", "UNITS", "add_months", "as_datetime", "date_add", "date_diff"]
