"""Computed values of a record in Python: formulas, rollups over subform rows, defaults.

Rollups over relations read other records and are computed in SQL by the records layer; only
rollups whose `relation` is a subform of the same form are computed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from engine.expr import Expression, ExpressionError, evaluate
from engine.forms import fields as f
from engine.forms._validation_plan import FieldPlan

FAILED = object()  # an expression that raised at run time (type mismatch, budget)
FORMULA_TEXT_LIMIT = 255  # a formula's text column is VARCHAR(255)
NUMBER_LIMIT = Decimal(10) ** 15


class Evaluator:
    """Evaluates parsed expressions with one clock and time zone."""

    __slots__ = ("now", "zone")

    def __init__(self, now: dt.datetime, timezone: str) -> None:
        self.now = now
        self.zone = ZoneInfo(timezone)

    def __call__(self, expr: Expression | None, env: Mapping[str, Any]) -> Any:
        """The value of `expr` (blank when there is none), or FAILED on a run-time error."""
        if expr is None:
            return None
        try:
            return evaluate(expr, env, now=self.now, timezone=self.zone)
        except ExpressionError:
            return FAILED

    def is_true(self, expr: Expression | None, env: Mapping[str, Any]) -> bool:
        return expr is not None and self(expr, env) is True


def formula_value(field: f.FormulaField, result: Any) -> Any:
    """A formula's result in its column's canonical form; None when it does not fit."""
    if result is FAILED or result is None:
        return None
    convert = _RESULTS.get(field.result_type)
    return None if convert is None else convert(field, result)


def _number(field: Any, result: Any) -> Decimal | None:
    if isinstance(result, bool) or not isinstance(result, Decimal | int | float):
        return None
    value = Decimal(repr(result)) if isinstance(result, float) else Decimal(result)
    if not value.is_finite() or abs(value) >= NUMBER_LIMIT:
        return None
    decimals = field.decimals
    if decimals is None and field.result_type == "money":
        decimals = 2
    if decimals is None:
        return value
    try:
        return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None


def _text(field: Any, result: Any) -> str | None:
    return result[:FORMULA_TEXT_LIMIT] if isinstance(result, str) else None


def _of(kind: type | tuple[type, ...], reject: type | None = None) -> Callable[[Any, Any], Any]:
    def convert(field: Any, result: Any) -> Any:
        if reject is not None and isinstance(result, reject):
            return None
        return result if isinstance(result, kind) else None

    return convert


def _date(field: Any, result: Any) -> dt.date | None:
    if isinstance(result, dt.datetime):
        return result.date()
    return result if isinstance(result, dt.date) else None


def _datetime(field: Any, result: Any) -> dt.datetime | None:
    if isinstance(result, dt.datetime):
        return result if result.tzinfo is not None else result.replace(tzinfo=dt.UTC)
    if isinstance(result, dt.date):
        return dt.datetime.combine(result, dt.time(0), tzinfo=dt.UTC)
    return None


_RESULTS: dict[str, Callable[[Any, Any], Any]] = {
    "number": _number,
    "money": _number,
    "percent": _number,
    "text": _text,
    "boolean": _of(bool),
    "date": _date,
    "datetime": _datetime,
    "time": _of(dt.time),
}


def rollup_value(
    plan: FieldPlan,
    rows: Sequence[Mapping[str, Any]],
    env: Mapping[str, Any],
    evaluator: Evaluator,
) -> Any:
    """count/sum/avg/min/max over the rows the filter keeps; blanks are skipped.

    `count` without a field counts rows; sum and count of nothing are 0, the others blank.
    """
    field: f.RollupField = plan.field
    kept = [
        row for row in rows if plan.formula is None or _keeps(plan.formula, row, env, evaluator)
    ]
    if field.aggregate == "count" and field.field is None:
        return Decimal(len(kept))
    name = field.field or ""
    values = [row.get(name) for row in kept if row.get(name) is not None]
    return _AGGREGATES[field.aggregate](values)


def _keeps(expr: Expression, row: Mapping[str, Any], env: Mapping[str, Any], ev: Evaluator) -> bool:
    return ev(expr, {**env, **row}) is True


def _numbers(values: list[Any]) -> list[Decimal]:
    return [
        v if isinstance(v, Decimal) else Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        for v in values
        if isinstance(v, Decimal | int | float) and not isinstance(v, bool)
    ]


def _sum(values: list[Any]) -> Decimal:
    return sum(_numbers(values), Decimal(0))


def _avg(values: list[Any]) -> Decimal | None:
    numbers = _numbers(values)
    return sum(numbers, Decimal(0)) / len(numbers) if numbers else None


def _extreme(pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    def aggregate(values: list[Any]) -> Any:
        try:
            return pick(values) if values else None
        except TypeError:
            return None

    return aggregate


_AGGREGATES: dict[str, Callable[[list[Any]], Any]] = {
    "count": lambda values: Decimal(len(values)),
    "sum": _sum,
    "avg": _avg,
    "min": _extreme(min),
    "max": _extreme(max),
}
