"""Dashboard checks, global filters, click linkage and drill-down on definitions (no database)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from engine.errors import DefinitionError
from engine.reports.dashboard import Click, check_dashboard, quick_range, widget_filters
from engine.reports.dashboard_drill import drill_step, period_of, records_query
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.spec import DashboardSpec, ReportSpec

TICKET_FIELDS = {"region", "city", "engineer", "created_at", "team", "channel", "priority"}
TODAY = date(2026, 11, 23)


def report(key: str, dims: list[dict[str, Any]], **extra: Any) -> ReportSpec:
    return ReportSpec.model_validate(
        {
            "key": key,
            "label": key,
            "dataset": {"form": "ticket"},
            "dimensions": dims,
            "measures": [{"key": "tickets", "aggregate": "count"}],
            **extra,
        }
    )


REPORTS = {
    "by_region": report("by_region", [{"key": "region", "field": "region"}]),
    "weekly": report(
        "weekly",
        [{"key": "week", "field": "created_at", "grain": "week"}],
        filters=[{"expr": 'status != "cancelled"'}],
    ),
    "total": report("total", []),
}


def field_exists(spec: ReportSpec, path: str) -> bool:
    return path in TICKET_FIELDS


def dashboard(**extra: Any) -> DashboardSpec:
    data: dict[str, Any] = {
        "key": "cockpit",
        "label": "Cockpit",
        "widgets": [
            {
                "key": "map",
                "report": "by_region",
                "x": 0,
                "y": 0,
                "w": 12,
                "h": 6,
                "links_to": ["trend", "kpi"],
                "drill_down": ["city", "engineer"],
            },
            {"key": "trend", "report": "weekly", "x": 12, "y": 0, "w": 12, "h": 6},
            {"key": "kpi", "report": "total", "x": 0, "y": 6, "w": 6, "h": 3},
        ],
        "filters": [
            {
                "key": "period",
                "label": "Period",
                "type": "date_range",
                "default": "last_30_days",
                "bindings": {"map": "created_at", "trend": "created_at", "kpi": "created_at"},
            },
            {
                "key": "region",
                "label": "Region",
                "type": "multiselect",
                "bindings": {"trend": "region", "kpi": "region"},
            },
            {"key": "q", "label": "Search", "type": "text", "bindings": {"map": "city"}},
        ],
        "refresh_seconds": 60,
    }
    data.update(extra)
    return DashboardSpec.model_validate(data)


def problems(spec: DashboardSpec) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as info:
        check_dashboard(spec, reports=REPORTS, field_exists=field_exists)
    return [(p.code, p.path) for p in info.value.problems]


def test_valid_dashboard_passes() -> None:
    check_dashboard(dashboard(), reports=REPORTS, field_exists=field_exists)


def test_every_problem_is_reported_with_its_path() -> None:
    spec = dashboard(
        widgets=[
            {"key": "a", "report": "missing", "x": 0, "y": 0, "w": 6, "h": 3},
            {
                "key": "b",
                "report": "by_region",
                "x": 0,
                "y": 0,
                "w": 6,
                "h": 3,
                "drill_down": ["nope"],
                "links_to": ["zzz", "c"],
            },
            {"key": "c", "report": "weekly", "x": 0, "y": 0, "w": 6, "h": 3, "links_to": ["b"]},
            {"key": "c", "report": "total", "x": 0, "y": 0, "w": 6, "h": 3},
        ],
        filters=[
            {
                "key": "f",
                "label": "F",
                "type": "select",
                "bindings": {"b": "no_such_field", "ghost": "region"},
            }
        ],
        alerts=[
            {
                "key": "x",
                "label": "X",
                "report": "by_region",
                "measure": "nope",
                "op": "gt",
                "threshold": 1,
            },
            {
                "key": "y",
                "label": "Y",
                "report": "gone",
                "measure": "t",
                "op": "gt",
                "threshold": 1,
            },
        ],
    )
    assert sorted(problems(spec)) == sorted(
        [
            ("dashboard.duplicate-key", "/widgets/3/key"),
            ("dashboard.unknown-report", "/widgets/0/report"),
            ("dashboard.unknown-field", "/widgets/1/drill_down/0"),
            ("dashboard.unknown-widget", "/widgets/1/links_to/0"),
            ("dashboard.not-linkable", "/widgets/2/links_to/0"),  # a week grain is not a field
            ("dashboard.unknown-field", "/filters/0/bindings/b"),
            ("dashboard.unknown-widget", "/filters/0/bindings/ghost"),
            ("dashboard.unknown-measure", "/alerts/0/measure"),
            ("dashboard.unknown-report", "/alerts/1/report"),
        ]
    )


def test_defaults_and_values_become_clauses_per_widget() -> None:
    filters = widget_filters(
        dashboard(),
        reports=REPORTS,
        values={"region": ["east", "north"], "q": "shang"},
        today=TODAY,
    )
    period = FilterClause("created_at", "between", ["2026-10-25", "2026-11-23"])
    assert filters["map"] == [period, FilterClause("city", "contains", "shang")]
    assert filters["trend"] == [period, FilterClause("region", "in", ["east", "north"])]


def test_explicit_range_and_open_ends() -> None:
    values = {"period": {"from": "2026-01-01", "to": None}}
    filters = widget_filters(dashboard(), reports=REPORTS, values=values, today=TODAY)
    assert filters["kpi"] == [FilterClause("created_at", "gte", "2026-01-01")]
    filters = widget_filters(dashboard(), reports=REPORTS, values={"period": None}, today=TODAY)
    assert filters["kpi"] == []


@pytest.mark.parametrize(
    ("values", "code", "loc"),
    [
        ({"nope": 1}, "dashboard.unknown-filter", "filters/nope"),
        ({"period": "last_century"}, "dashboard.bad-filter-value", "filters/period"),
        ({"period": [1, 2, 3]}, "dashboard.bad-filter-value", "filters/period"),
        ({"q": 5}, "dashboard.bad-filter-value", "filters/q"),
        ({"region": {"a": 1}}, "dashboard.bad-filter-value", "filters/region"),
    ],
)
def test_bad_filter_values(values: dict[str, Any], code: str, loc: str) -> None:
    with pytest.raises(ReportQueryError) as info:
        widget_filters(dashboard(), reports=REPORTS, values=values, today=TODAY)
    assert (info.value.code, info.value.errors[0].loc) == (code, loc)


def test_click_filters_the_linked_widgets_only() -> None:
    filters = widget_filters(
        dashboard(), reports=REPORTS, values={}, clicks=[Click("map", "east")], today=TODAY
    )
    assert FilterClause("region", "eq", "east") in filters["trend"]
    assert FilterClause("region", "eq", "east") in filters["kpi"]
    assert FilterClause("region", "eq", "east") not in filters["map"]


def test_click_on_an_unlinkable_widget() -> None:
    with pytest.raises(ReportQueryError) as info:
        widget_filters(
            dashboard(), reports=REPORTS, values={}, clicks=[Click("trend", "x")], today=TODAY
        )
    assert (info.value.code, info.value.errors[0].loc) == ("dashboard.not-linkable", "clicks/0")


def test_quick_ranges() -> None:
    assert quick_range("today", TODAY) == (TODAY, TODAY)
    assert quick_range("last_7_days", TODAY) == (date(2026, 11, 17), TODAY)
    assert quick_range("this_month", TODAY) == (date(2026, 11, 1), TODAY)
    assert quick_range("this_quarter", TODAY) == (date(2026, 10, 1), TODAY)
    assert quick_range("this_year", TODAY) == (date(2026, 1, 1), TODAY)


def test_drill_region_city_engineer_records() -> None:
    fields = ("city", "engineer")
    base = REPORTS["by_region"]
    assert drill_step(base, fields, []).report == base
    one = drill_step(base, fields, ["east"])
    assert one.report is not None and one.report.dimensions[0].field == "city"
    assert one.report.chart.x == "city"
    assert one.filters == (FilterClause("region", "eq", "east"),)
    two = drill_step(base, fields, ["east", "shanghai"])
    assert two.report is not None and two.report.dimensions[0].field == "engineer"
    records = drill_step(base, fields, ["east", "shanghai", 7])
    assert records.report is None and records.level == 3
    assert records.filters[-1] == FilterClause("engineer", "eq", 7)
    query = records_query(base, records.filters)
    assert query["form"] == "ticket"
    assert query["filter"]["and"][0] == {"field": "region", "op": "eq", "value": "east"}


def test_drill_from_a_weekly_trend_filters_the_week() -> None:
    step = drill_step(REPORTS["weekly"], ("channel",), ["2026-11-16"])
    assert step.filters == (FilterClause("created_at", "between", ["2026-11-16", "2026-11-22"]),)
    query = records_query(
        REPORTS["weekly"], drill_step(REPORTS["weekly"], (), ["2026-11-16"]).filters
    )
    assert query["filter_expr"] == '(status != "cancelled")'


def test_drill_too_deep_and_not_drillable() -> None:
    with pytest.raises(ReportQueryError) as info:
        drill_step(REPORTS["by_region"], ("city",), ["a", "b", "c"])
    assert (info.value.code, info.value.errors[0].loc) == ("dashboard.drill-too-deep", "drill/2")
    with pytest.raises(ReportQueryError) as info:
        drill_step(REPORTS["total"], (), ["a"])
    assert info.value.code == "dashboard.not-drillable"


@pytest.mark.parametrize(
    ("grain", "value", "expected"),
    [
        ("day", "2026-02-03", (date(2026, 2, 3), date(2026, 2, 3))),
        ("month", "2024-02-01", (date(2024, 2, 1), date(2024, 2, 29))),
        ("quarter", "2026-10-01", (date(2026, 10, 1), date(2026, 12, 31))),
        ("year", "2026-01-01T00:00:00+08:00", (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_periods(grain: str, value: str, expected: tuple[date, date]) -> None:
    assert period_of(value, grain, where="drill/0") == expected
