"""Reading a `QueryResult` for output: JSON-safe cells, typed table rows and chart axes.

Everything here reshapes rows the database already aggregated; nothing sums raw records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from engine.reports.result import QueryResult, ResultColumn
from engine.reports.spec import Chart

BLANK = "(blank)"
OTHERS = "Others"


def json_cell(value: Any) -> Any:
    """A cell as JSON: decimals become floats (or ints when whole), dates ISO text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def column_json(column: ResultColumn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": column.key,
        "label": column.label,
        "role": column.role,
        "type": column.type,
    }
    if column.format is not None:
        out["format"] = column.format
    if column.decimals is not None:
        out["decimals"] = column.decimals
    return out


def table_payload(result: QueryResult) -> dict[str, Any]:
    """Rows with typed columns, as the API returns a report and a detail table shows it."""
    payload: dict[str, Any] = {
        "columns": [column_json(c) for c in result.columns],
        "rows": [[json_cell(v) for v in row] for row in result.rows],
        "truncated": result.truncated,
        "others": result.others,
    }
    if result.compare is not None:
        payload["compare"] = [[json_cell(v) for v in row] for row in result.compare]
    return payload


def category_label(value: Any) -> str:
    value = json_cell(value)
    if value is None:
        return BLANK
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class ChartData:
    """The columns a chart plots: the category dimension, the split dimension and measures."""

    result: QueryResult
    x: ResultColumn | None
    series: ResultColumn | None
    measures: tuple[ResultColumn, ...]
    secondary: tuple[ResultColumn, ...]

    def categories(self) -> list[str]:
        """Category labels in first-seen order (the query's sort decides the order)."""
        if self.x is None:
            return []
        index = self.result.index(self.x.key)
        seen: dict[str, None] = {}
        for position, row in enumerate(self.result.rows):
            seen.setdefault(self._label(row[index], position))
        return list(seen)

    def series_names(self) -> list[str]:
        if self.series is None:
            return []
        index = self.result.index(self.series.key)
        seen: dict[str, None] = {}
        for row in self.result.rows:
            seen.setdefault(category_label(row[index]))
        return list(seen)

    def grid(self, measure: ResultColumn) -> dict[tuple[str, str], Any]:
        """(category, series name or "") → the measure's value."""
        x_index = self.result.index(self.x.key) if self.x else None
        s_index = self.result.index(self.series.key) if self.series else None
        m_index = self.result.index(measure.key)
        out: dict[tuple[str, str], Any] = {}
        for position, row in enumerate(self.result.rows):
            category = self._label(row[x_index], position) if x_index is not None else ""
            name = category_label(row[s_index]) if s_index is not None else ""
            out[(category, name)] = json_cell(row[m_index])
        return out

    def values(self, measure: ResultColumn) -> list[Any]:
        index = self.result.index(measure.key)
        return [json_cell(row[index]) for row in self.result.rows]

    def _label(self, value: Any, position: int) -> str:
        last = len(self.result.rows) - 1
        if self.result.others and position == last:
            return OTHERS
        return category_label(value)


def chart_data(chart: Chart, result: QueryResult) -> ChartData:
    """Resolve `chart.x`, `chart.series`, `chart.y` against the result's columns.

    Defaults: x is the first dimension not used as `series`, y every measure not on the
    secondary axis.

    Raises:
        KeyError: a key the result has no column for (the compiler checks this earlier).
    """
    by_key = {c.key: c for c in result.columns}
    dimensions = [c for c in result.columns if c.role == "dimension"]
    series = by_key[chart.series] if chart.series else None
    if chart.x:
        x: ResultColumn | None = by_key[chart.x]
    else:
        x = next((c for c in dimensions if series is None or c.key != series.key), None)
    secondary = tuple(by_key[k] for k in chart.secondary_y)
    if chart.y:
        measures: Sequence[ResultColumn] = [by_key[k] for k in chart.y]
    else:
        taken = {c.key for c in secondary} | ({x.key} if x else set())
        measures = [c for c in result.columns if c.role == "measure" and c.key not in taken]
    return ChartData(result, x, series, tuple(measures), secondary)


__all__ = [
    "BLANK",
    "OTHERS",
    "ChartData",
    "category_label",
    "chart_data",
    "column_json",
    "json_cell",
    "table_payload",
]
