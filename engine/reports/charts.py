"""Chart output: a report's `QueryResult` as an ECharts option object, a KPI card or a table.

`render_chart(chart, result)` picks the builder registered for `chart.type` and deep-merges
`chart.options` over what it built (dicts key by key, lists of dicts item by item), so a
definition can set e.g. `series: [{min: -100, max: 100}]` on a gauge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.reports.charts_axis import (
    area_options,
    bar_options,
    column_options,
    combo_options,
    heatmap_options,
    line_options,
    scatter_options,
)
from engine.reports.charts_data import (
    ChartData,
    category_label,
    chart_data,
    json_cell,
    table_payload,
)
from engine.reports.result import QueryResult
from engine.reports.spec import Chart

ChartBuilder = Callable[[Chart, ChartData], dict[str, Any]]


def _first_value(data: ChartData, rows: tuple[tuple[Any, ...], ...] | None) -> Any:
    if not rows or not data.measures:
        return None
    return json_cell(rows[0][data.result.index(data.measures[0].key)])


def kpi_card(chart: Chart, data: ChartData) -> dict[str, Any]:
    """The first measure of the first row, with the previous period's value and the change."""
    measure = data.measures[0] if data.measures else None
    value = _first_value(data, data.result.rows)
    previous = _first_value(data, data.result.compare)
    change = None
    if isinstance(value, int | float) and isinstance(previous, int | float) and previous:
        change = round((value - previous) / abs(previous), 6)
    card: dict[str, Any] = {"kind": "kpi", "value": value, "previous": previous, "change": change}
    if measure is not None:
        card.update(label=measure.label, format=measure.format, decimals=measure.decimals)
    for extra in data.measures[1:]:  # e.g. the sample size n shown under the value
        card.setdefault("extra", {})[extra.key] = _first_value_of(data, extra.key)
    card.update(_card_flags(data.result.meta, has_rows=bool(data.result.rows)))
    return card


def _card_flags(meta: Mapping[str, Any], *, has_rows: bool) -> dict[str, Any]:
    """The n<30 guard and the provisional flag of the card's row (the first), when the report
    asks for them: a flagged value is shown as "n<30" / hatched and is not coloured."""
    flags: dict[str, Any] = {}
    small = meta.get("small_sample")
    if isinstance(small, dict):
        flags["small_sample"] = not has_rows or 0 in small.get("rows", ())
        if "compare_rows" in small:
            flags["previous_small_sample"] = 0 in small["compare_rows"]
    provisional = meta.get("provisional")
    if isinstance(provisional, dict):
        flags["provisional"] = bool(provisional.get("period"))
    return flags


def _first_value_of(data: ChartData, key: str) -> Any:
    rows = data.result.rows
    return json_cell(rows[0][data.result.index(key)]) if rows else None


def _named_values(data: ChartData) -> list[dict[str, Any]]:
    measure = data.measures[0]
    grid = data.grid(measure)
    return [{"name": c, "value": grid.get((c, ""))} for c in data.categories()]


def pie_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    return {
        "tooltip": {"trigger": "item"},
        "legend": {"type": "scroll"},
        "series": [{"name": data.measures[0].label, "type": "pie", "data": _named_values(data)}],
    }


def ring_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    options = pie_options(chart, data)
    options["series"][0]["radius"] = ["45%", "70%"]
    return options


def funnel_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """Stages in the query's order (a funnel's order is its meaning: sort it in the query)."""
    values = _named_values(data)
    return {
        "tooltip": {"trigger": "item"},
        "series": [
            {"name": data.measures[0].label, "type": "funnel", "sort": "none", "data": values}
        ],
    }


def map_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """Regions by name on a registered map (`china` unless the options name another)."""
    values = _named_values(data)
    numbers = [float(v["value"]) for v in values if v["value"] is not None]
    return {
        "tooltip": {"trigger": "item"},
        "visualMap": {
            "min": min(numbers, default=0),
            "max": max(numbers, default=0),
            "calculable": True,
        },
        "series": [{"name": data.measures[0].label, "type": "map", "map": "china", "data": values}],
    }


def gauge_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """One needle: 0..100 by default; set `series: [{min, max}]` in the options (NPS: −100)."""
    measure = data.measures[0]
    value = _first_value(data, data.result.rows)
    return {
        "series": [
            {
                "name": measure.label,
                "type": "gauge",
                "min": 0,
                "max": 100,
                "data": [{"name": measure.label, "value": value}],
            }
        ],
    }


def detail_table(chart: Chart, data: ChartData) -> dict[str, Any]:
    return {"kind": "table", **table_payload(data.result)}


BUILDERS: Mapping[str, ChartBuilder] = {
    "kpi": kpi_card,
    "bar": bar_options,
    "column": column_options,
    "line": line_options,
    "area": area_options,
    "combo": combo_options,
    "pie": pie_options,
    "ring": ring_options,
    "funnel": funnel_options,
    "scatter": scatter_options,
    "heatmap": heatmap_options,
    "map": map_options,
    "gauge": gauge_options,
    "table": detail_table,
}


def merge_options(base: Any, extra: Any) -> Any:
    """`extra` laid over `base`: dicts merge by key, lists of dicts by position."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = merge_options(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        size = max(len(base), len(extra))
        return [
            merge_options(base[i], extra[i])
            if i < len(base) and i < len(extra)
            else (base[i] if i < len(base) else extra[i])
            for i in range(size)
        ]
    return extra


def render_chart(chart: Chart, result: QueryResult) -> dict[str, Any]:
    """The chart for `result`: ECharts options, or `{"kind": "kpi"|"table", …}`.

    A `pivot` chart is built by `engine.reports.pivot` from several grouping levels; given a
    single result here it falls back to the detail table.
    """
    builder = BUILDERS.get(chart.type, detail_table)
    data = chart_data(chart, result)
    if not data.measures and chart.type not in ("table", "pivot", "scatter"):
        return detail_table(chart, data)
    built = builder(chart, data)
    return merge_options(built, dict(chart.options)) if chart.options else built


__all__ = [
    "BUILDERS",
    "ChartBuilder",
    "category_label",
    "merge_options",
    "render_chart",
]
