"""ECharts options for charts on a category axis: bar, column, line, area, combo, heatmap and
scatter.

A `percent` stack shows each series' share of its category. The shares divide values the
database aggregated; they are only meaningful for additive measures (counts, sums), so a
percent stack over a ratio measure is the definition author's mistake, not corrected here.
"""

from __future__ import annotations

from typing import Any

from engine.reports.charts_data import ChartData, category_label, json_cell
from engine.reports.result import ResultColumn
from engine.reports.spec import Chart


def _series_values(data: ChartData, measure: ResultColumn) -> list[tuple[str, list[Any]]]:
    """One (name, values per category) per series: split by `series`, or one per measure."""
    categories = data.categories()
    grid = data.grid(measure)
    names = data.series_names() or [""]
    out = []
    for name in names:
        label = name or measure.label
        if data.series is not None and len(data.measures) > 1:
            label = f"{name} · {measure.label}"
        out.append((label, [grid.get((c, name)) for c in categories]))
    return out


def _percent(stacks: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    if not stacks:
        return stacks
    width = len(stacks[0][1])
    totals = [sum(float(values[i] or 0) for _, values in stacks) for i in range(width)]
    return [
        (
            name,
            [
                round(float(v or 0) * 100 / t, 4) if t else None
                for v, t in zip(values, totals, strict=True)
            ],
        )
        for name, values in stacks
    ]


def _bar_like(chart: Chart, data: ChartData, kind: str) -> dict[str, Any]:
    stacks: list[tuple[str, list[Any]]] = []
    for measure in data.measures:
        stacks.extend(_series_values(data, measure))
    if chart.stack == "percent":
        stacks = _percent(stacks)
    series: list[dict[str, Any]] = []
    for name, values in stacks:
        item: dict[str, Any] = {"name": name, "type": kind, "data": values}
        if chart.stack != "none":
            item["stack"] = "total"
        series.append(item)
    value_axis: dict[str, Any] = {"type": "value"}
    if chart.stack == "percent":
        value_axis.update(max=100, axisLabel={"formatter": "{value}%"})
    category_axis = {"type": "category", "data": data.categories()}
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"data": [s["name"] for s in series]},
        "xAxis": category_axis,
        "yAxis": value_axis,
        "series": series,
    }


def column_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    return _bar_like(chart, data, "bar")


def bar_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """Horizontal bars: the category axis is vertical."""
    options = _bar_like(chart, data, "bar")
    options["xAxis"], options["yAxis"] = options["yAxis"], options["xAxis"]
    return options


def _previous_series(data: ChartData, kind: str) -> list[dict[str, Any]]:
    """The comparison period's values as dashed series, matched by category label."""
    compare = data.result.compare
    if compare is None or data.x is None or data.series is not None:
        return []
    x_index = data.result.index(data.x.key)
    out = []
    for measure in data.measures:
        m_index = data.result.index(measure.key)
        by_label = {category_label(row[x_index]): json_cell(row[m_index]) for row in compare}
        out.append(
            {
                "name": f"{measure.label} (previous)",
                "type": kind,
                "data": [by_label.get(c) for c in data.categories()],
                "lineStyle": {"type": "dashed"},
            }
        )
    return out


def line_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    options = _bar_like(chart, data, "line")
    options["xAxis"]["boundaryGap"] = False
    options["series"].extend(_previous_series(data, "line"))
    options["legend"] = {"data": [s["name"] for s in options["series"]]}
    return options


def area_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    options = line_options(chart, data)
    for item in options["series"]:
        item["areaStyle"] = {}
    return options


def combo_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """Bars for `y` on the left axis, lines for `secondary_y` on the right axis."""
    options = _bar_like(chart, data, "bar")
    for measure in data.secondary:
        for name, values in _series_values(data, measure):
            options["series"].append(
                {"name": name, "type": "line", "yAxisIndex": 1, "data": values}
            )
    options["yAxis"] = [options["yAxis"], {"type": "value", "position": "right"}]
    options["legend"] = {"data": [s["name"] for s in options["series"]]}
    return options


def heatmap_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """Categories × `series` values, coloured by the first measure."""
    measure = data.measures[0]
    xs = data.categories()
    ys = data.series_names() or [""]
    grid = data.grid(measure)
    points = [
        [i, j, grid[(x, y)]] for i, x in enumerate(xs) for j, y in enumerate(ys) if (x, y) in grid
    ]
    numbers = [float(p[2]) for p in points if p[2] is not None]
    return {
        "tooltip": {"position": "top"},
        "xAxis": {"type": "category", "data": xs, "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": ys, "splitArea": {"show": True}},
        "visualMap": {
            "min": min(numbers, default=0),
            "max": max(numbers, default=0),
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
        },
        "series": [{"name": measure.label, "type": "heatmap", "data": points}],
    }


def scatter_options(chart: Chart, data: ChartData) -> dict[str, Any]:
    """One point per row: `x` and the first `y` are measures; the first dimension names it."""
    if data.x is None or data.x.role != "measure" or not data.measures:
        raise KeyError("a scatter chart needs x and y measures")
    xs = data.values(data.x)
    ys = data.values(data.measures[0])
    names_column = next((c for c in data.result.columns if c.role == "dimension"), None)
    names = (
        [category_label(v) for v in data.values(names_column)] if names_column else [""] * len(xs)
    )
    points = [{"name": n, "value": [x, y]} for n, x, y in zip(names, xs, ys, strict=True)]
    return {
        "tooltip": {"trigger": "item"},
        "xAxis": {"type": "value", "name": data.x.label},
        "yAxis": {"type": "value", "name": data.measures[0].label},
        "series": [{"name": data.measures[0].label, "type": "scatter", "data": points}],
    }


__all__ = [
    "area_options",
    "bar_options",
    "column_options",
    "combo_options",
    "heatmap_options",
    "line_options",
    "scatter_options",
]
