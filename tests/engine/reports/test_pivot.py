"""Pivot tables from per-level results: subtotals and totals are read, never re-summed."""

from __future__ import annotations

from typing import Any

import pytest

from engine.reports.pivot import build_pivot, pivot_levels
from engine.reports.result import QueryResult, ResultColumn


def col(key: str, role: Any = "dimension") -> ResultColumn:
    return ResultColumn(key=key, label=key.upper(), role=role, type="text")


MET, TOTAL, RATE = col("met", "measure"), col("total", "measure"), col("rate", "measure")


def result(dims: tuple[str, ...], rows: list[tuple[Any, ...]]) -> QueryResult:
    return QueryResult(columns=(*(col(d) for d in dims), MET, TOTAL, RATE), rows=tuple(rows))


def test_levels_finest_first() -> None:
    assert pivot_levels(["region", "city"], ["week"]) == [
        ("region", "city", "week"),
        ("region", "city"),
        ("region", "week"),
        ("region",),
        ("week",),
        (),
    ]
    assert pivot_levels(["region"], []) == [("region",), ()]


@pytest.fixture
def levels() -> dict[tuple[str, ...], QueryResult]:
    # rate = met / total at every level, as the database computes it: the region subtotal's
    # rate is 3/4 = 0.75, not the mean of 1.0 and 0.5.
    return {
        ("region", "city", "week"): result(
            ("region", "city", "week"),
            [
                ("e", "sh", "w1", 1, 1, 1.0),
                ("e", "hz", "w1", 1, 2, 0.5),
                ("e", "hz", "w2", 1, 1, 1.0),
                ("n", "bj", "w2", 0, 1, 0.0),
            ],
        ),
        ("region", "city"): result(
            ("region", "city"),
            [("e", "sh", 1, 1, 1.0), ("e", "hz", 2, 3, 0.6667), ("n", "bj", 0, 1, 0.0)],
        ),
        ("region", "week"): result(
            ("region", "week"),
            [("e", "w1", 2, 3, 0.6667), ("e", "w2", 1, 1, 1.0), ("n", "w2", 0, 1, 0.0)],
        ),
        ("region",): result(("region",), [("e", 3, 4, 0.75), ("n", 0, 1, 0.0)]),
        ("week",): result(("week",), [("w1", 2, 3, 0.6667), ("w2", 1, 2, 0.5)]),
        (): result((), [(3, 5, 0.6)]),
    }


def test_pivot_with_subtotals_and_totals(levels: dict[tuple[str, ...], QueryResult]) -> None:
    pivot = build_pivot(rows=["region", "city"], columns=["week"], measures=["rate"], levels=levels)
    assert [c["values"] for c in pivot["columns"]] == [["w1"], ["w2"], []]
    assert pivot["columns"][-1]["total"] is True
    lines = [(r["values"], r["level"], r["cells"]) for r in pivot["rows"]]
    assert lines == [
        (["e", "sh"], 2, [[1.0], None, [1.0]]),
        (["e", "hz"], 2, [[0.5], [1.0], [0.6667]]),
        (["e"], 1, [[0.6667], [1.0], [0.75]]),
        (["n", "bj"], 2, [None, [0.0], [0.0]]),
        (["n"], 1, [None, [0.0], [0.0]]),
        ([], 0, [[0.6667], [0.5], [0.6]]),
    ]
    assert [r["total"] for r in pivot["rows"]] == [False, False, True, False, True, True]


def test_pivot_without_column_dimensions(levels: dict[tuple[str, ...], QueryResult]) -> None:
    pivot = build_pivot(rows=["region"], columns=[], measures=["met", "total"], levels=levels)
    assert pivot["columns"] == [{"values": [], "total": False}]
    assert [(r["values"], r["cells"]) for r in pivot["rows"]] == [
        (["e"], [[3, 4]]),
        (["n"], [[0, 1]]),
        ([], [[3, 5]]),
    ]


def test_pivot_without_row_dimensions(levels: dict[tuple[str, ...], QueryResult]) -> None:
    pivot = build_pivot(rows=[], columns=["week"], measures=["met"], levels=levels)
    assert [(r["values"], r["cells"]) for r in pivot["rows"]] == [([], [[2], [1], [3]])]


def test_missing_level_leaves_cells_null(levels: dict[tuple[str, ...], QueryResult]) -> None:
    del levels[("region",)]
    pivot = build_pivot(rows=["region"], columns=["week"], measures=["met"], levels=levels)
    assert pivot["rows"][0]["cells"][-1] is None


def test_finest_level_is_required() -> None:
    with pytest.raises(KeyError):
        build_pivot(rows=["region"], columns=[], measures=["met"], levels={})
