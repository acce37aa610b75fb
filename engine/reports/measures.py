"""Aggregates over the row-level query's measure inputs, per dialect.

The row-level query gives each aggregate measure one input column: the field (or 1 for a plain
count), wrapped in `CASE WHEN filter THEN … END` when the measure is conditional. The aggregate
here then runs over that column, so a conditional count is `COUNT(input)` and a conditional sum
`SUM(input)`: rows outside the filter are NULL and every aggregate skips NULLs.

median and p90 are `percentile_cont(0.5 | 0.9) WITHIN GROUP (ORDER BY input)` on PostgreSQL
(linear interpolation between the two nearest rows). SQLite has no ordered-set aggregate: the
same value is computed exactly, in the same statement, from window functions. Each input is
ranked within its group (`row_number()` ascending, blanks last) and counted (`count() OVER`);
the aggregate then picks the rows at 1 + floor(p·(n−1)) and the next, and interpolates with
PostgreSQL's own float arithmetic, so both databases give the same number.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    return dialect in ("postgresql", "sqlite")


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


def ranked_inputs(
    inner: Any, indexes: Sequence[int], partition: Sequence[Sql], *, name: str = "ranked_rows"
) -> Any:
    """`inner` (a subquery) plus `rn<i>` and `n<i>` for each measure input `m<i>` of `indexes`."""
    extra: list[Sql] = []
    for index in indexes:
        value = inner.c[f"m{index}"]
        order = value.asc().nulls_last()
        extra.append(sa.func.row_number().over(partition_by=partition or None, order_by=order)
                     .label(f"rn{index}"))  # fmt: skip
        extra.append(sa.func.count(value).over(partition_by=partition or None).label(f"n{index}"))
    return sa.select(*inner.c, *extra).subquery(name)


def interpolated_percentile(inner: Any, index: int, fraction: float) -> Sql:
    """percentile_cont(`fraction`) of input `m<index>` from its rank and count columns."""
    value, rank, count = inner.c[f"m{index}"], inner.c[f"rn{index}"], inner.c[f"n{index}"]
    position = (count - 1) * sa.literal(fraction, sa.Float)
    first = sa.cast(position, sa.Integer)  # truncation = floor, position is never negative
    low = sa.func.max(sa.case((rank == first + 1, value), else_=sa.null()))
    high = sa.func.max(sa.case((rank == first + 2, value), else_=sa.null()))
    proportion = sa.func.max(position - first)
    return sa.case((proportion > 0, low + (high - low) * proportion), else_=low)


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
    "interpolated_percentile",
    "ranked_inputs",
    "result_type",
    "supported",
]
