"""Row-level SQL of a compiled report: dimension values and expressions over dataset columns.

Kept apart from the compiler (which checks a report against its forms without SQL) so that
the compiler stays a pure layer; `engine.reports.statement` assembles these into the SELECT.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, Problem
from engine.expr import ExpressionError
from engine.expr.sql import compile_filter, compile_sql
from engine.forms.listing import DATETIME
from engine.reports.dimensions import bucket_rank, bucket_sql, grain_sql
from engine.reports.worktime_sql import worktime_sql

if TYPE_CHECKING:
    from engine.reports.compiler import CompiledDimension, ReportExpr

BAD_EXPR = "report.bad-expr"
Sql = ColumnElement[Any]


def dimension_sql(dimension: CompiledDimension, dialect: str, zone: ZoneInfo, now: datetime) -> Sql:
    """The dimension's value per row: the field, its period's first day, its bucket label, or
    the expression."""
    if dimension.expr is not None:
        return expression_sql(dimension.expr, dialect, now, zone)
    assert dimension.source is not None
    value = dimension.source.sql
    if dimension.grain is not None:
        family = dimension.source.family
        truncated = grain_sql(value, family, dimension.grain, dialect=dialect, zone=zone)
        return sa.type_coerce(truncated, sa.Date())
    if dimension.buckets:
        return bucket_sql(value, dimension.buckets)
    return value


def dimension_rank(dimension: CompiledDimension) -> Sql | None:
    """Sort key of a bucket dimension (its labels do not sort as the buckets do)."""
    if not dimension.buckets or dimension.source is None:
        return None
    return bucket_rank(dimension.source.sql, dimension.buckets)


def _columns(item: ReportExpr, dialect: str, now: datetime, zone: ZoneInfo) -> dict[str, Sql]:
    columns: dict[str, Sql] = {}
    for name, column in item.columns.items():
        sql = column.sql
        if column.family == DATETIME:  # the expression compiler reads types from columns
            sql = sa.type_coerce(sql, sa.DateTime(timezone=True))
        columns[name] = sql
    for call in item.worktime:  # WORKTIMEADD: computed now, bound as parameters
        columns[call.name] = worktime_sql(call, columns, dialect=dialect, now=now, zone=zone)
    return columns


def expression_sql(item: ReportExpr, dialect: str, now: datetime, zone: ZoneInfo) -> Sql:
    """An expression's value per row."""
    try:
        columns = _columns(item, dialect, now, zone)
        return compile_sql(item.expression, columns, dialect=dialect, now=now, timezone=zone)
    except ExpressionError as err:
        raise _bad(item.where, err) from err


def condition_sql(item: ReportExpr, dialect: str, now: datetime, zone: ZoneInfo) -> Sql:
    """A filter expression as a WHERE condition."""
    try:
        columns = _columns(item, dialect, now, zone)
        return compile_filter(item.expression, columns, dialect=dialect, now=now, timezone=zone)
    except ExpressionError as err:
        raise _bad(item.where, err) from err


def _bad(where: str, err: ExpressionError) -> DefinitionError:
    return DefinitionError([Problem(code=BAD_EXPR, path=where, message=f"{err.code}: {err}")])


__all__ = ["condition_sql", "dimension_rank", "dimension_sql", "expression_sql"]
