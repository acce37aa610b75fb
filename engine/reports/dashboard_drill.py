"""Drill-down: a widget's clicked path turned into the next level's query, then the records.

Level 0 is the widget's report. A click on a value of its first dimension filters by that value
(a whole week, month… when the dimension has a date grain) and regroups by the widget's first
`drill_down` field; each further click filters by the previous drill field and regroups by the
next. One click past the last drill field opens the records list with every filter so far.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from engine.errors import FieldError
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.spec import Dimension, ReportSpec

NOT_DRILLABLE = "dashboard.not-drillable"
DRILL_TOO_DEEP = "dashboard.drill-too-deep"
RECORD_OPS = {
    "eq": "eq",
    "in": "in",
    "between": "between",
    "gte": "ge",
    "lte": "le",
    "contains": "contains",
}


@dataclass(frozen=True, slots=True)
class DrillStep:
    """`report` is the query at this level (None at the records level); `filters` the clicked
    values so far, to add to the widget's other filters."""

    level: int
    report: ReportSpec | None
    filters: tuple[FilterClause, ...]


def _fail(where: str, code: str, message: str) -> ReportQueryError:
    return ReportQueryError([FieldError(where, code, message)])


def period_of(value: Any, grain: str, *, where: str) -> tuple[date, date]:
    """The inclusive first and last day of the `grain` period a grouped value starts."""
    try:
        start = date.fromisoformat(str(value)[:10])
    except ValueError as err:
        raise _fail(where, NOT_DRILLABLE, f"{value!r} is not a date") from err
    if grain == "day":
        return start, start
    if grain == "week":
        return start, start + timedelta(days=6)
    if grain == "month":
        return start, start.replace(day=calendar.monthrange(start.year, start.month)[1])
    if grain == "quarter":
        last_month = start.month + 2
        return start, date(start.year, last_month, calendar.monthrange(start.year, last_month)[1])
    return start, date(start.year, 12, 31)


def _first_clause(dimension: Dimension, value: Any, where: str) -> FilterClause:
    if dimension.field is None or dimension.buckets:
        raise _fail(where, NOT_DRILLABLE, f"dimension {dimension.key!r} cannot be drilled into")
    if dimension.grain is None:
        return FilterClause(dimension.field, "eq", value)
    low, high = period_of(value, dimension.grain, where=where)
    return FilterClause(dimension.field, "between", [low.isoformat(), high.isoformat()])


def _regrouped(report: ReportSpec, field: str) -> ReportSpec:
    """`report` grouped by `field` instead of its first dimension."""
    old = report.dimensions[0].key
    key = field.replace(".", "_")
    dimensions = (Dimension(key=key, field=field), *report.dimensions[1:])
    chart = report.chart
    if chart.x in (None, old):
        chart = chart.model_copy(update={"x": key})
    sort = tuple(s for s in report.sort if s.by != old)
    return report.model_copy(update={"dimensions": dimensions, "chart": chart, "sort": sort})


def drill_step(report: ReportSpec, fields: Sequence[str], path: Sequence[Any]) -> DrillStep:
    """The query (or records) after clicking the values in `path`, level by level.

    Raises:
        ReportQueryError: the report's first dimension cannot be drilled (an expression or
            buckets; `drill/0`), or the path is longer than the drill fields plus the records.
    """
    if not path:
        return DrillStep(0, report, ())
    if not report.dimensions:
        raise _fail("drill/0", NOT_DRILLABLE, f"report {report.key!r} has no dimension")
    if len(path) > len(fields) + 1:
        raise _fail(
            f"drill/{len(fields) + 1}",
            DRILL_TOO_DEEP,
            f"the drill path has {len(fields)} levels before the records",
        )
    clauses = [_first_clause(report.dimensions[0], path[0], "drill/0")]
    clauses += [
        FilterClause(field, "eq", value)
        for field, value in zip(fields[: len(path) - 1], path[1:], strict=True)
    ]
    level = len(path)
    if level > len(fields):
        return DrillStep(level, None, tuple(clauses))
    return DrillStep(level, _regrouped(report, fields[level - 1]), tuple(clauses))


def records_query(report: ReportSpec, filters: Sequence[FilterClause]) -> Mapping[str, Any]:
    """The records-list request (docs/lists.md) showing the rows behind a drilled value:
    the report's own row filters as `filter_expr`, the clauses as the filter tree."""
    tree = {"and": [{"field": c.field, "op": RECORD_OPS[c.op], "value": c.value} for c in filters]}
    expr = " AND ".join(f"({f.expr})" for f in report.filters if f.stage == "where")
    query: dict[str, Any] = {"form": report.dataset.form, "filter": tree}
    if expr:
        query["filter_expr"] = expr
    return query


__all__ = [
    "DRILL_TOO_DEEP",
    "NOT_DRILLABLE",
    "DrillStep",
    "drill_step",
    "period_of",
    "records_query",
]
