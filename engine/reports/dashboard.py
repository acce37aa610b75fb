"""Dashboards: definition checks, global filters and click linkage as per-widget filters.

`check_dashboard` collects every problem of a dashboard against its app's reports (missing
reports, filter bindings or drill fields absent from a widget's dataset, links to unknown
widgets, alerts on unknown measures). `widget_filters` turns the request's filter values and
clicks into the `FilterClause`s each widget's query gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from engine.errors import DefinitionError, FieldError, Problem
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.spec import DashboardSpec, GlobalFilter, ReportSpec, Widget

UNKNOWN_REPORT = "dashboard.unknown-report"
UNKNOWN_WIDGET = "dashboard.unknown-widget"
UNKNOWN_FIELD = "dashboard.unknown-field"
DUPLICATE_KEY = "dashboard.duplicate-key"
NOT_LINKABLE = "dashboard.not-linkable"
UNKNOWN_MEASURE = "dashboard.unknown-measure"
BAD_FILTER_VALUE = "dashboard.bad-filter-value"
UNKNOWN_FILTER = "dashboard.unknown-filter"
CARD_NOT_DRILLABLE = "dashboard.not-drillable"
QUICK_RANGES = ("today", "last_7_days", "last_30_days", "this_month", "this_quarter", "this_year")

FieldExists = Callable[[ReportSpec, str], bool]


def _first_field(report: ReportSpec) -> str | None:
    """The field a click on the report's chart is a value of: its first dimension's field."""
    if not report.dimensions:
        return None
    first = report.dimensions[0]
    return first.field if first.grain is None and not first.buckets else None


def check_dashboard(
    spec: DashboardSpec, *, reports: Mapping[str, ReportSpec], field_exists: FieldExists
) -> None:
    """Raise one `DefinitionError` listing every problem (code, JSON pointer) of `spec`."""
    problems: list[Problem] = []

    def add(code: str, path: str, message: str) -> None:
        problems.append(Problem(code=code, path=path, message=message))

    widgets: dict[str, Widget] = {}
    for i, widget in enumerate(spec.widgets):
        if widget.key in widgets:
            add(DUPLICATE_KEY, f"/widgets/{i}/key", f"widget key {widget.key!r} is used twice")
        widgets[widget.key] = widget
    dated = {w for f in spec.filters if f.type == "date_range" for w in f.bindings}
    for i, widget in enumerate(spec.widgets):
        if widget.card is not None and widget.drill_down and widget.key not in dated:
            message = "a card drills through its weekly trend: bind a date-range filter to it"
            add(CARD_NOT_DRILLABLE, f"/widgets/{i}/drill_down", message)
        report = reports.get(widget.report)
        if report is None:
            add(UNKNOWN_REPORT, f"/widgets/{i}/report", f"no report {widget.report!r} in the app")
            continue
        for j, field in enumerate(widget.drill_down):
            if not field_exists(report, field):
                add(
                    UNKNOWN_FIELD,
                    f"/widgets/{i}/drill_down/{j}",
                    f"{field!r} is not a field of report {report.key!r}'s dataset",
                )
        measures = {m.key for m in report.measures}
        if widget.card is not None and widget.card not in measures:
            message = f"report {report.key!r} has no measure {widget.card!r}"
            add(UNKNOWN_MEASURE, f"/widgets/{i}/card", message)
        for j, measure in enumerate(widget.small_sample.measures if widget.small_sample else ()):
            if measure not in measures:
                path = f"/widgets/{i}/small_sample/measures/{j}"
                add(UNKNOWN_MEASURE, path, f"report {report.key!r} has no measure {measure!r}")
        for j, target in enumerate(widget.links_to):
            _check_link(
                add,
                f"/widgets/{i}/links_to/{j}",
                report,
                widgets.get(target),
                target,
                reports,
                field_exists,
            )
    for i, global_filter in enumerate(spec.filters):
        for widget_key, field in global_filter.bindings.items():
            path = f"/filters/{i}/bindings/{widget_key}"
            bound = widgets.get(widget_key)
            if bound is None:
                add(UNKNOWN_WIDGET, path, f"no widget {widget_key!r} on the dashboard")
            elif bound.report in reports and not field_exists(reports[bound.report], field):
                add(
                    UNKNOWN_FIELD,
                    path,
                    f"{field!r} is not a field of report {bound.report!r}'s dataset",
                )
    for i, alert in enumerate(spec.alerts):
        report = reports.get(alert.report)
        if report is None:
            add(UNKNOWN_REPORT, f"/alerts/{i}/report", f"no report {alert.report!r} in the app")
        elif alert.measure not in {m.key for m in report.measures}:
            add(
                UNKNOWN_MEASURE,
                f"/alerts/{i}/measure",
                f"report {alert.report!r} has no measure {alert.measure!r}",
            )
    if problems:
        raise DefinitionError(problems)


def _check_link(
    add: Callable[[str, str, str], None],
    path: str,
    report: ReportSpec,
    target: Widget | None,
    target_key: str,
    reports: Mapping[str, ReportSpec],
    field_exists: FieldExists,
) -> None:
    if target is None:
        add(UNKNOWN_WIDGET, path, f"no widget {target_key!r} on the dashboard")
        return
    field = _first_field(report)
    if field is None:
        add(NOT_LINKABLE, path, f"report {report.key!r} has no plain field as first dimension")
        return
    target_report = reports.get(target.report)
    if target_report is not None and not field_exists(target_report, field):
        add(UNKNOWN_FIELD, path, f"{field!r} is not a field of report {target.report!r}")


@dataclass(frozen=True, slots=True)
class Click:
    """A value clicked in `widget`'s chart (a value of its first dimension)."""

    widget: str
    value: Any


def _bad(key: str, message: str, code: str = BAD_FILTER_VALUE) -> ReportQueryError:
    return ReportQueryError([FieldError(f"filters/{key}", code, message)])


def quick_range(name: str, today: date) -> tuple[date, date]:
    """The inclusive local-date range of a quick pick ending today."""
    if name == "today":
        return today, today
    if name in ("last_7_days", "last_30_days"):
        return today - timedelta(days=6 if name == "last_7_days" else 29), today
    if name == "this_month":
        return today.replace(day=1), today
    if name == "this_quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1), today
    return today.replace(month=1, day=1), today


def _date_range(key: str, field: str, value: Any, today: date) -> list[FilterClause]:
    if isinstance(value, str):
        if value not in QUICK_RANGES:
            raise _bad(key, f"a date range is [from, to] or one of {', '.join(QUICK_RANGES)}")
        low, high = quick_range(value, today)
        return [FilterClause(field, "between", [low.isoformat(), high.isoformat()])]
    if isinstance(value, Mapping):
        value = [value.get("from"), value.get("to")]
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _bad(key, "a date range is [from, to] (either may be null)")
    low, high = value
    if low is not None and high is not None:
        return [FilterClause(field, "between", [low, high])]
    if low is not None:
        return [FilterClause(field, "gte", low)]
    return [FilterClause(field, "lte", high)] if high is not None else []


def filter_clauses(
    global_filter: GlobalFilter, field: str, value: Any, *, today: date
) -> list[FilterClause]:
    """The clauses of one filter value on `field`: nothing for an empty value."""
    key = global_filter.key
    if value is None or value == "" or value == []:
        return []
    if global_filter.type == "date_range":
        return _date_range(key, field, value, today)
    if global_filter.type == "text":
        if not isinstance(value, str):
            raise _bad(key, "a text filter takes a string")
        return [FilterClause(field, "contains", value)]
    if isinstance(value, list):
        if global_filter.type == "select":
            raise _bad(key, "a select filter takes one value")
        return [FilterClause(field, "in", value)]
    if isinstance(value, dict):
        raise _bad(key, "expected a value or a list of values")
    return [FilterClause(field, "eq", value)]


def widget_filters(
    spec: DashboardSpec,
    *,
    reports: Mapping[str, ReportSpec],
    values: Mapping[str, Any],
    clicks: Sequence[Click] = (),
    today: date,
) -> dict[str, list[FilterClause]]:
    """Each widget's extra filters: bound global filters (request value, else default) and the
    values clicked in widgets that link to it.

    Raises:
        ReportQueryError: an unknown filter key, a value of the wrong shape, a click on an
            unknown or unlinkable widget (paths `filters/<key>`, `clicks/<n>`).
    """
    known = {f.key for f in spec.filters}
    for key in values:
        if key not in known:
            raise _bad(key, f"the dashboard has no filter {key!r}", UNKNOWN_FILTER)
    out: dict[str, list[FilterClause]] = {w.key: [] for w in spec.widgets}
    for global_filter in spec.filters:
        value = values.get(global_filter.key, global_filter.default)
        for widget_key, field in global_filter.bindings.items():
            if widget_key in out:
                out[widget_key] += filter_clauses(global_filter, field, value, today=today)
    widgets = {w.key: w for w in spec.widgets}
    for n, click in enumerate(clicks):
        source = widgets.get(click.widget)
        report = reports.get(source.report) if source else None
        clicked = _first_field(report) if report else None
        if source is None or clicked is None:
            raise ReportQueryError(
                [FieldError(f"clicks/{n}", NOT_LINKABLE, f"cannot filter by {click.widget!r}")]
            )
        for target in source.links_to:
            if target in out:
                out[target].append(FilterClause(clicked, "eq", click.value))
    return out


__all__ = [
    "BAD_FILTER_VALUE",
    "DUPLICATE_KEY",
    "NOT_LINKABLE",
    "QUICK_RANGES",
    "UNKNOWN_FIELD",
    "UNKNOWN_FILTER",
    "UNKNOWN_MEASURE",
    "UNKNOWN_REPORT",
    "UNKNOWN_WIDGET",
    "Click",
    "check_dashboard",
    "filter_clauses",
    "quick_range",
    "widget_filters",
]
