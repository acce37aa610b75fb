"""Row-level SQL of dimensions: date grains in a time zone, numeric buckets.

PostgreSQL truncates `timezone(zone, t)` with `date_trunc`, so any IANA zone (daylight saving
included) is exact. SQLite stores datetimes as UTC text and has no zone database: a zone is
accepted there only when its UTC offset is fixed from 2000 on (Asia/Shanghai, UTC, Etc/GMT-8),
and is applied as a `+N minutes` modifier; other zones are refused with
`report.timezone-unsupported` at compile time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, Problem
from engine.forms.listing import DATE, DATETIME

BAD_TIMEZONE = "report.bad-timezone"
TIMEZONE_UNSUPPORTED = "report.timezone-unsupported"
Sql = ColumnElement[Any]
GRAINS = ("day", "week", "month", "quarter", "year")


def zone_of(name: str, *, dialect: str, where: str) -> ZoneInfo:
    """The zone `name`; on SQLite only zones with a fixed offset since 2000."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise DefinitionError(
            [Problem(BAD_TIMEZONE, where, f"unknown time zone {name!r}")]
        ) from err
    if dialect == "sqlite" and fixed_offset_minutes(zone) is None:
        message = f"time zone {name!r} has daylight saving; SQLite reports need a fixed offset"
        raise DefinitionError([Problem(TIMEZONE_UNSUPPORTED, where, message)])
    return zone


def fixed_offset_minutes(zone: ZoneInfo) -> int | None:
    """The zone's UTC offset in minutes if it never changed from 2000 to 2100, else None."""
    offsets = set()
    for year in range(2000, 2101):
        for month in (1, 4, 7, 10):
            moment = datetime(year, month, 1, tzinfo=UTC).astimezone(zone)
            offset = moment.utcoffset() or timedelta(0)
            offsets.add(int(offset.total_seconds() // 60))
    return offsets.pop() if len(offsets) == 1 else None


def grain_sql(column: Sql, family: str, grain: str, *, dialect: str, zone: ZoneInfo) -> Sql:
    """The first day (a date) of the `grain` period holding `column`, in `zone` for datetimes."""
    if dialect == "postgresql":
        return _pg_grain(column, family, grain, zone)
    return _sqlite_grain(column, family, grain, zone)


def _pg_grain(column: Sql, family: str, grain: str, zone: ZoneInfo) -> Sql:
    local = column
    if family == DATETIME:
        local = sa.func.timezone(sa.literal(zone.key, sa.Text), column)
    truncated = sa.func.date_trunc(sa.literal(grain, sa.Text), local)
    return sa.cast(truncated, sa.Date)


def _sqlite_grain(column: Sql, family: str, grain: str, zone: ZoneInfo) -> Sql:
    # One date() call with every modifier: nested calls cost a parse per row each.
    shift: list[Sql] = []
    if family == DATETIME:
        minutes = fixed_offset_minutes(zone) or 0
        shift.append(sa.literal(f"{minutes:+d} minutes", sa.Text))
    steps = {
        "day": (),
        "week": ("weekday 0", "-6 days"),  # forward to Sunday (same day if Sunday), then Monday
        "month": ("start of month",),
        "quarter": ("start of month",),
        "year": ("start of year",),
    }[grain]
    modifiers = shift + [sa.literal(step, sa.Text) for step in steps]
    if grain == "quarter":
        month = sa.cast(sa.func.strftime(sa.literal("%m", sa.Text), column, *shift), sa.Integer)
        modifiers.append(sa.func.printf(sa.literal("-%d months", sa.Text), (month - 1) % 3))
    return sa.func.date(column, *modifiers)


def bucket_sql(column: Sql, bounds: tuple[float, ...]) -> Sql:
    """The label of `column`'s bucket: `< b0`, `b0 – b1`, …, `≥ bn`; blank stays blank.

    Labels sort as the buckets do only by position, so the runner orders bucket dimensions by
    `bucket_rank`.
    """
    whens = [(column < _number(bounds[0]), sa.literal(f"< {_text(bounds[0])}", sa.Text))]
    for low, high in zip(bounds, bounds[1:], strict=False):
        label = f"{_text(low)} – {_text(high)}"
        whens.append((column < _number(high), sa.literal(label, sa.Text)))
    whens.append((column.is_not(None), sa.literal(f"≥ {_text(bounds[-1])}", sa.Text)))
    return sa.case(*whens, else_=sa.null())


def bucket_rank(column: Sql, bounds: tuple[float, ...]) -> Sql:
    """The bucket's position (0 = below the first bound); blank stays blank."""
    whens = [(column < _number(bound), sa.literal(i)) for i, bound in enumerate(bounds)]
    whens.append((column.is_not(None), sa.literal(len(bounds))))
    return sa.case(*whens, else_=sa.null())


def _number(value: float) -> Sql:
    return sa.literal(value, sa.Float)


def _text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def is_temporal(family: str) -> bool:
    return family in (DATE, DATETIME)


__all__ = [
    "BAD_TIMEZONE",
    "GRAINS",
    "TIMEZONE_UNSUPPORTED",
    "bucket_rank",
    "bucket_sql",
    "fixed_offset_minutes",
    "grain_sql",
    "is_temporal",
    "zone_of",
]
