"""Aggregates over the row-level query's measure inputs, per dialect.

The row-level query gives each aggregate measure one input column: the field (or 1 for a plain
count), wrapped in `CASE WHEN filter THEN … END` when the measure is conditional. The aggregate
here then runs over that column, so a conditional count is `COUNT(input)` and a conditional sum
`SUM(input)`: rows outside the filter are NULL and every aggregate skips NULLs.

median and p90 are `percentile_cont(0.5 | 0.9) WITHIN GROUP (ORDER BY input)` on PostgreSQL
(linear interpolation between the two nearest rows). SQLite has no ordered-set aggregate, and
these measures are refused there at compile time (`report.aggregate-unsupported`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.forms.listing import DATE, DATETIME, NUMBER
from engine.reports.result import ColumnType

AGGREGATE_UNSUPPORTED = "report.aggregate-unsupported"
NOT_AGGREGATABLE = "report.not-aggregatable"
Sql = ColumnElement[Any]
NUMERIC_ONLY = frozenset(("sum", "avg", "median", "p90"))
ORDERED = frozenset(("min", "max"))
PERCENTILES = {"median": 0.5, "p90": 0.9}


def supported(aggregate: str, dialect: str) -> bool:
    """Whether `dialect` computes `aggregate` in SQL."""
    return aggregate not in PERCENTILES or dialect == "postgresql"


def accepts(aggregate: str, family: str | None) -> bool:
    """Whether `aggregate` applies to a field of `family` (None: a plain count)."""
    if aggregate in NUMERIC_ONLY:
        return family == NUMBER
    if aggregate in ORDERED:
        return family in (NUMBER, DATE, DATETIME)
    return True


def aggregate_sql(aggregate: str, value: Sql | None) -> Sql:
    """The aggregate of the input column `value` (None: count every row)."""
    if aggregate == "count":
        return sa.func.count() if value is None else sa.func.count(value)
    assert value is not None
    if aggregate == "count_distinct":
        return sa.func.count(sa.distinct(value))
    if aggregate in PERCENTILES:
        fraction = sa.literal(PERCENTILES[aggregate], sa.Float)
        return sa.func.percentile_cont(fraction).within_group(value)
    if aggregate == "sum":
        return sa.func.sum(value)
    if aggregate == "avg":
        return sa.func.avg(value)
    return sa.func.min(value) if aggregate == "min" else sa.func.max(value)


def result_type(aggregate: str, family: str | None) -> ColumnType:
    """The result column type of `aggregate` over a field of `family`."""
    if aggregate in ("count", "count_distinct"):
        return "integer"
    if aggregate in ORDERED and family in (DATE, DATETIME):
        return "date" if family == DATE else "datetime"
    return "number"


__all__ = [
    "AGGREGATE_UNSUPPORTED",
    "NOT_AGGREGATABLE",
    "NUMERIC_ONLY",
    "PERCENTILES",
    "accepts",
    "aggregate_sql",
    "result_type",
    "supported",
]
