"""The SQL value of a `WORKTIMEADD` call (engine/reports/worktime.py) for one request: the
instant computed in Python with the request's clock, bound as a parameter; with a per-row
calendar, `CASE <key> WHEN :cal1 THEN :t1 ... END` over the app's calendars."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.expr import parse
from engine.expr.errors import ExpressionError
from engine.expr.sql import compile_sql, type_of
from engine.flows.calendar import BusinessCalendar, add_business
from engine.reports.worktime import FUNCTION, WorktimeCall

_NOW = parse("NOW()")
Sql = ColumnElement[Any]


def _start_instant(call: WorktimeCall, now: datetime, zone: ZoneInfo) -> datetime:
    start = call.start
    if start == "now":
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    if start == "today":
        start = now.astimezone(zone).date()
    if isinstance(start, datetime):
        return start if start.tzinfo else start.replace(tzinfo=UTC)
    assert isinstance(start, date)
    return datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)


def worktime_sql(
    call: WorktimeCall,
    columns: Mapping[str, Sql],
    *,
    dialect: str,
    now: datetime,
    zone: ZoneInfo,
) -> Sql:
    """The call's value: one bound instant, or a CASE over the app's calendars."""
    start = _start_instant(call, now, zone)
    from engine.reports.compiler import _CHECK_CLOCK

    # The compiler's check build (clock 2000-01-01) needs only the statement's shape: walking
    # the calendar from 2000 would grow its day table over 26 years (~0.4 s) for nothing.
    checking = now == _CHECK_CLOCK

    def instant(calendar: BusinessCalendar) -> Sql:
        moment = start if checking else add_business(calendar, start, call.seconds)
        return compile_sql(_NOW, {}, dialect=dialect, now=moment)

    by_key = call.calendars.by_key
    if call.calendar is not None:
        value = instant(by_key[call.calendar])
    elif not by_key:
        value = sa.null()
    else:
        assert call.calendar_expr is not None
        key = compile_sql(call.calendar_expr, columns, dialect=dialect, now=now, timezone=zone)
        if type_of(key).kind not in ("text", "any", "null"):
            raise ExpressionError.at(
                call.calendar_expr.root.pos,
                f"{FUNCTION}: the calendar must be a calendar key (text), not {type_of(key)}",
                code="expr.type-mismatch",
            )
        value = sa.case({k: instant(by_key[k]) for k in sorted(by_key)}, value=key)
    return sa.type_coerce(value, sa.DateTime(timezone=True))


__all__ = ["worktime_sql"]
