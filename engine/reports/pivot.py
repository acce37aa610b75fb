"""Pivot tables: row dimensions × column dimensions, with subtotals per row level and totals.

Every number in a pivot comes from the database. A pivot over rows r1…rn and columns c needs
the query grouped at each level: (r1…rk, c) for the cells and (r1…rk) for the total column,
for k = n…0 (`pivot_levels`). The service runs each level as its own grouped query through
the compiler, so a calculated measure such as a ratio is computed over the level's whole
population (Σ numerator / Σ denominator), never as a sum or average of the cells below it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.reports.charts_data import json_cell
from engine.reports.result import QueryResult

Level = tuple[str, ...]


def pivot_levels(rows: Sequence[str], columns: Sequence[str]) -> list[Level]:
    """The groupings a pivot reads, finest first: cells, then the total column, per row level."""
    levels: list[Level] = []
    for depth in range(len(rows), -1, -1):
        prefix = tuple(rows[:depth])
        if columns:
            levels.append(prefix + tuple(columns))
        levels.append(prefix)
    return levels


def _index(
    result: QueryResult | None, rows: Level, columns: Level, measures: Sequence[str]
) -> dict[tuple[tuple[Any, ...], tuple[Any, ...]], list[Any]]:
    if result is None:
        return {}
    r_idx = [result.index(k) for k in rows]
    c_idx = [result.index(k) for k in columns]
    m_idx = [result.index(k) for k in measures]
    return {
        (
            tuple(json_cell(row[i]) for i in r_idx),
            tuple(json_cell(row[i]) for i in c_idx),
        ): [json_cell(row[i]) for i in m_idx]
        for row in result.rows
    }


def _ordered(keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return list(dict.fromkeys(keys))


def build_pivot(
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    measures: Sequence[str],
    levels: Mapping[Level, QueryResult],
) -> dict[str, Any]:
    """The pivot payload from one result per level of `pivot_levels(rows, columns)`.

    Row and column order follow the finest level's rows (the query's sort). A subtotal row
    follows the rows it sums up; the grand total row comes last; with column dimensions, each
    row ends with a total column. A level missing from `levels` leaves its cells null.
    """
    rows, columns = tuple(rows), tuple(columns)
    finest = levels.get(rows + columns)
    if finest is None:
        raise KeyError(rows + columns)
    cells = {
        depth: _index(levels.get(rows[:depth] + columns), rows[:depth], columns, measures)
        for depth in range(len(rows) + 1)
    }
    totals = (
        {
            depth: _index(levels.get(rows[:depth]), rows[:depth], (), measures)
            for depth in range(len(rows) + 1)
        }
        if columns
        else {}
    )
    leaf_keys = _ordered([key[0] for key in cells[len(rows)]])
    column_keys = _ordered([key[1] for key in cells[len(rows)]])

    def line(row_key: tuple[Any, ...], depth: int) -> dict[str, Any]:
        values = [cells[depth].get((row_key, c)) for c in column_keys]
        if columns:
            values.append(totals[depth].get((row_key, ())))
        return {
            "values": list(row_key),
            "level": depth,
            "total": depth < len(rows),
            "cells": values,
        }

    body: list[dict[str, Any]] = []
    for position, leaf in enumerate(leaf_keys if rows else []):
        body.append(line(leaf, len(rows)))
        following = leaf_keys[position + 1] if position + 1 < len(leaf_keys) else None
        for depth in range(len(rows) - 1, 0, -1):  # close each group that ends here
            if following is None or following[:depth] != leaf[:depth]:
                body.append(line(leaf[:depth], depth))
    body.append(line((), 0))

    by_key = {c.key: c for c in finest.columns}
    header = [{"values": list(c), "total": False} for c in column_keys]
    if columns:
        header.append({"values": [], "total": True})
    return {
        "kind": "pivot",
        "row_dimensions": [{"key": k, "label": by_key[k].label} for k in rows],
        "column_dimensions": [{"key": k, "label": by_key[k].label} for k in columns],
        "measures": [
            {
                "key": k,
                "label": by_key[k].label,
                "format": by_key[k].format,
                "decimals": by_key[k].decimals,
            }
            for k in measures
        ],
        "columns": header,
        "rows": body,
    }


__all__ = ["Level", "build_pivot", "pivot_levels"]
