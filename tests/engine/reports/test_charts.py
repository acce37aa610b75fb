"""Chart output on fixed query results: one test per chart type, no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from engine.reports.charts import merge_options, render_chart
from engine.reports.charts_data import table_payload
from engine.reports.result import QueryResult, ResultColumn
from engine.reports.spec import Chart


def dim(key: str, type_: Any = "text") -> ResultColumn:
    return ResultColumn(key=key, label=key.title(), role="dimension", type=type_)


def measure(key: str, fmt: str = "number") -> ResultColumn:
    return ResultColumn(key=key, label=key.title(), role="measure", type="number", format=fmt)


BY_REGION = QueryResult(
    columns=(dim("region"), measure("tickets"), measure("sla", "percent")),
    rows=(("east", 30, Decimal("0.9")), ("north", 10, Decimal("0.5")), (None, 5, None)),
)
BY_REGION_AND_TEAM = QueryResult(
    columns=(dim("region"), dim("team"), measure("tickets")),
    rows=(("east", "a", 20), ("east", "b", 10), ("north", "a", 10)),
)


def chart(**kwargs: Any) -> Chart:
    return Chart(**kwargs)


def test_kpi_card_has_value_previous_and_change() -> None:
    result = QueryResult(
        columns=(measure("frt"), measure("n")), rows=((Decimal("3.5"), 40),), compare=((7, 35),)
    )
    card = render_chart(chart(type="kpi"), result)
    assert card["kind"] == "kpi"
    assert card["value"] == 3.5 and card["previous"] == 7
    assert card["change"] == -0.5
    assert card["extra"] == {"n": 40}


def test_kpi_card_without_previous_period_or_rows() -> None:
    empty = QueryResult(columns=(measure("frt"),), rows=())
    card = render_chart(chart(type="kpi"), empty)
    assert card["value"] is None and card["change"] is None


def test_column_grouped_by_measures() -> None:
    options = render_chart(chart(type="column", y=("tickets",)), BY_REGION)
    assert options["xAxis"] == {"type": "category", "data": ["east", "north", "(blank)"]}
    assert options["series"] == [{"name": "Tickets", "type": "bar", "data": [30, 10, 5]}]


def test_bar_is_horizontal() -> None:
    options = render_chart(chart(type="bar", y=("tickets",)), BY_REGION)
    assert options["yAxis"]["type"] == "category"
    assert options["xAxis"]["type"] == "value"


def test_stacked_column_split_by_series() -> None:
    options = render_chart(chart(type="column", series="team", stack="stacked"), BY_REGION_AND_TEAM)
    assert options["xAxis"]["data"] == ["east", "north"]
    series = {s["name"]: s for s in options["series"]}
    assert series["a"]["data"] == [20, 10] and series["b"]["data"] == [10, None]
    assert all(s["stack"] == "total" for s in options["series"])


def test_percent_stack_shares_per_category() -> None:
    options = render_chart(chart(type="column", series="team", stack="percent"), BY_REGION_AND_TEAM)
    series = {s["name"]: s["data"] for s in options["series"]}
    assert series["a"] == [pytest.approx(66.6667), 100.0]
    assert series["b"] == [pytest.approx(33.3333), 0.0]
    assert options["yAxis"]["max"] == 100


def test_line_with_previous_period_series() -> None:
    result = QueryResult(
        columns=(dim("week", "date"), measure("tickets")),
        rows=((date(2026, 1, 5), 3), (date(2026, 1, 12), 4)),
        compare=((date(2026, 1, 5), 2),),
    )
    options = render_chart(chart(type="line"), result)
    assert options["xAxis"]["data"] == ["2026-01-05", "2026-01-12"]
    assert options["series"][0]["data"] == [3, 4]
    assert options["series"][1]["name"] == "Tickets (previous)"
    assert options["series"][1]["data"] == [2, None]


def test_area_fills_lines() -> None:
    options = render_chart(chart(type="area", y=("tickets",)), BY_REGION)
    assert options["series"][0]["type"] == "line" and options["series"][0]["areaStyle"] == {}


def test_combo_has_a_second_axis() -> None:
    options = render_chart(chart(type="combo", y=("tickets",), secondary_y=("sla",)), BY_REGION)
    assert [s["type"] for s in options["series"]] == ["bar", "line"]
    assert options["series"][1]["yAxisIndex"] == 1
    assert options["series"][1]["data"] == [0.9, 0.5, None]
    assert len(options["yAxis"]) == 2


def test_pie_and_ring() -> None:
    pie = render_chart(chart(type="pie", y=("tickets",)), BY_REGION)
    assert pie["series"][0]["data"][0] == {"name": "east", "value": 30}
    ring = render_chart(chart(type="ring", y=("tickets",)), BY_REGION)
    assert ring["series"][0]["radius"] == ["45%", "70%"]


def test_funnel_keeps_the_query_order() -> None:
    options = render_chart(chart(type="funnel", y=("tickets",)), BY_REGION)
    assert options["series"][0]["sort"] == "none"
    assert [d["value"] for d in options["series"][0]["data"]] == [30, 10, 5]


def test_scatter_plots_two_measures_named_by_dimension() -> None:
    options = render_chart(chart(type="scatter", x="tickets", y=("sla",)), BY_REGION)
    assert options["series"][0]["data"][0] == {"name": "east", "value": [30, 0.9]}


def test_heatmap_cells_and_range() -> None:
    options = render_chart(chart(type="heatmap", series="team"), BY_REGION_AND_TEAM)
    assert options["yAxis"]["data"] == ["a", "b"]
    assert [0, 0, 20] in options["series"][0]["data"]
    assert [1, 1, 10] not in options["series"][0]["data"]  # north × b has no row
    assert options["visualMap"]["min"] == 10 and options["visualMap"]["max"] == 20


def test_map_by_region() -> None:
    options = render_chart(chart(type="map", y=("tickets",)), BY_REGION)
    assert options["series"][0]["map"] == "china"
    assert options["visualMap"]["max"] == 30


def test_gauge_range_from_options() -> None:
    result = QueryResult(columns=(measure("nps"),), rows=((-12,),))
    spec = chart(type="gauge", options={"series": [{"min": -100, "max": 100}]})
    options = render_chart(spec, result)
    assert options["series"][0]["min"] == -100 and options["series"][0]["max"] == 100
    assert options["series"][0]["data"][0]["value"] == -12
    assert options["series"][0]["type"] == "gauge"


def test_detail_table_has_typed_columns() -> None:
    table = render_chart(chart(type="table"), BY_REGION)
    assert table["kind"] == "table"
    assert table["columns"][2] == {
        "key": "sla",
        "label": "Sla",
        "role": "measure",
        "type": "number",
        "format": "percent",
    }
    assert table["rows"][0] == ["east", 30, 0.9]


def test_others_row_is_labelled() -> None:
    result = QueryResult(
        columns=(dim("fault"), measure("tickets")),
        rows=(("f1", 9), ("f2", 5), (None, 3)),
        others=True,
    )
    options = render_chart(chart(type="column"), result)
    assert options["xAxis"]["data"] == ["f1", "f2", "Others"]


def test_table_payload_is_json_safe() -> None:
    result = QueryResult(
        columns=(dim("day", "date"), measure("x")), rows=((date(2026, 2, 1), 2.5),)
    )
    assert table_payload(result)["rows"] == [["2026-02-01", 2.5]]


def test_merge_options_by_key_and_position() -> None:
    base = {"a": {"b": 1, "c": 2}, "s": [{"x": 1}, {"x": 2}]}
    merged = merge_options(base, {"a": {"c": 3}, "s": [{"y": 1}], "t": True})
    assert merged == {"a": {"b": 1, "c": 3}, "s": [{"x": 1, "y": 1}, {"x": 2}], "t": True}
