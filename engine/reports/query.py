"""Request-time conditions on a report: dashboard filters, click linkage and drill-down.

A `FilterClause` names a dataset field path, an operator and a value; it becomes a WHERE
condition with the value bound as a parameter (never spliced into SQL). A date value on a
datetime field means that local day in the report's time zone: `between` two dates keeps
[first 00:00, day after last 00:00) there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import FieldError, SubmissionError
from engine.forms.listing import BOOLEAN, CHOICE, DATE, DATETIME, ID, NUMBER, TEXT, TIME

BAD_FILTER = "report.bad-filter"
Operator = Literal["eq", "in", "between", "gte", "lte", "contains"]
OPERATORS: tuple[str, ...] = ("eq", "in", "between", "gte", "lte", "contains")
MAX_IN_VALUES = 1000
Sql = ColumnElement[Any]


@dataclass(frozen=True, slots=True)
class FilterClause:
    """`field` (a dataset path) `op` `value`; `in` takes a list, `between` a [low, high] pair."""

    field: str
    op: Operator
    value: Any


class ReportQueryError(SubmissionError):
    """A request-time filter or drill value does not fit the report; paths point into it."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(errors, message=f"{errors[0].loc}: {errors[0].message}")
        self.code = errors[0].code


def bad(where: str, message: str, code: str = BAD_FILTER) -> ReportQueryError:
    return ReportQueryError([FieldError(where, code, message)])


def clause_condition(
    column: Sql, family: str, clause: FilterClause, *, zone: ZoneInfo, where: str
) -> Sql:
    """The WHERE condition of `clause` on `column` (a field of value family `family`)."""
    op, value = clause.op, clause.value
    if op not in OPERATORS:
        raise bad(f"{where}/op", f"unknown operator {op!r}")
    if op == "contains":
        if family != TEXT or not isinstance(value, str):
            raise bad(f"{where}/value", "contains needs a text field and a text value")
        return column.icontains(value, autoescape=True)
    if op == "in":
        if not isinstance(value, list | tuple) or not 0 < len(value) <= MAX_IN_VALUES:
            raise bad(f"{where}/value", f"in needs a list of 1 to {MAX_IN_VALUES} values")
        values = [_value(family, item, zone, f"{where}/value/{i}") for i, item in enumerate(value)]
        return column.in_(sa.bindparam(None, values, expanding=True, type_=column.type))
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise bad(f"{where}/value", "between needs [low, high]")
        low = _bound(column, family, value[0], zone, f"{where}/value/0", upper=False)
        high = _bound(column, family, value[1], zone, f"{where}/value/1", upper=True)
        return sa.and_(low, high)
    if op == "gte":
        return _bound(column, family, value, zone, f"{where}/value", upper=False)
    if op == "lte":
        return _bound(column, family, value, zone, f"{where}/value", upper=True)
    if value is None:
        return column.is_(None)
    return column == _param(column, _value(family, value, zone, f"{where}/value"))


def _bound(column: Sql, family: str, raw: Any, zone: ZoneInfo, where: str, *, upper: bool) -> Sql:
    if family == DATETIME and _is_day(raw):
        day = raw if isinstance(raw, date) else date.fromisoformat(raw)
        if upper:  # through the end of that local day
            return column < _param(column, _midnight(day + timedelta(days=1), zone))
        return column >= _param(column, _midnight(day, zone))
    value = _param(column, _value(family, raw, zone, where))
    return column <= value if upper else column >= value


def _param(column: Sql, value: Any) -> Sql:
    return sa.bindparam(None, value, type_=column.type)


def _is_day(raw: Any) -> bool:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return True
    return isinstance(raw, str) and len(raw) == 10


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _value(family: str, raw: Any, zone: ZoneInfo, where: str) -> Any:
    """`raw` (JSON or Python) as the value stored for `family`, else ReportQueryError."""
    try:
        if family in (TEXT, CHOICE) and isinstance(raw, str):
            return raw
        if (
            family == NUMBER
            and isinstance(raw, int | float | Decimal)
            and not isinstance(raw, bool)
        ):
            return raw
        if family == ID and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if family == BOOLEAN and isinstance(raw, bool):
            return raw
        if family == DATE:
            return raw if isinstance(raw, date) else date.fromisoformat(str(raw))
        if family == TIME:
            return raw if isinstance(raw, time) else time.fromisoformat(str(raw))
        if family == DATETIME:
            moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    except ValueError as err:
        raise bad(where, f"not a {family} value: {err}") from err
    raise bad(where, f"expected a {family} value, got {type(raw).__name__}")


def drill_condition(column: Sql, value: Any) -> Sql:
    """The rows whose dimension value (the row-level expression `column`) equals `value`."""
    if value is None:
        return column.is_(None)
    return column == _param(column, value)


__all__ = [
    "BAD_FILTER",
    "OPERATORS",
    "FilterClause",
    "Operator",
    "ReportQueryError",
    "bad",
    "clause_condition",
    "drill_condition",
]
