"""The result of a report query: typed columns and rows, as every output (table, pivot, chart,
export) consumes it. The compiler produces it; nothing downstream re-aggregates rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ColumnRole = Literal["dimension", "measure"]
ColumnType = Literal["text", "integer", "number", "boolean", "date", "datetime"]


@dataclass(frozen=True, slots=True)
class ResultColumn:
    key: str
    label: str
    role: ColumnRole
    type: ColumnType
    format: str | None = None  # number | percent | money | duration (measures)
    decimals: int | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows in column order. `compare` holds the previous-period rows when the report asks for
    a comparison (same columns); `others` marks a trailing top-N "others" row."""

    columns: tuple[ResultColumn, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False
    compare: tuple[tuple[Any, ...], ...] | None = None
    others: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def index(self, key: str) -> int:
        for i, column in enumerate(self.columns):
            if column.key == key:
                return i
        raise KeyError(key)


__all__ = ["ColumnRole", "ColumnType", "QueryResult", "ResultColumn"]
