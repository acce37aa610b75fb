"""Card, compare, n<30 and provisional options on definitions (no database): widgets lay them
over their report, and a measure that does not exist is refused with its path."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest

from engine.errors import DefinitionError
from engine.reports.compiler import compile_report
from engine.reports.dashboard import check_dashboard
from engine.reports.periods import result_flags, shifted_filters
from engine.reports.query import FilterClause
from engine.reports.spec import DashboardSpec, ReportSpec, Widget

SLA = ReportSpec.model_validate(
    {
        "key": "sla",
        "label": "SLA",
        "timezone": "Asia/Shanghai",
        "dataset": {"form": "ticket"},
        "dimensions": [{"key": "week", "field": "response_by", "grain": "week"}],
        "measures": [
            {"key": "met", "aggregate": "count", "filter": 'response_state = "met"'},
            {"key": "breached", "aggregate": "count", "filter": 'response_state = "breached"'},
            {"key": "rate", "expr": "met / (met + breached)"},
        ],
        "sort": [{"by": "week"}],
        "chart": {"type": "line", "x": "week", "y": ["rate"]},
    }
)
NOW = datetime(2026, 1, 1, 4, tzinfo=UTC)  # noon in Shanghai


def widget(**extra: Any) -> Widget:
    return Widget.model_validate({"key": "w", "report": "sla", "x": 0, "y": 0, "w": 6, "h": 3,
                                  **extra})  # fmt: skip


def test_a_card_drops_the_dimensions_and_shows_the_n() -> None:
    card = widget(card="rate", compare="previous_period",
                  small_sample={"measures": ["met", "breached"]}).applied_to(SLA)  # fmt: skip
    assert card.dimensions == () and card.sort == ()
    assert card.chart.type == "kpi" and card.chart.y == ("rate", "met", "breached")
    assert card.compare == "previous_period" and card.small_sample is not None
    assert widget().applied_to(SLA) is SLA


def test_unknown_measures_are_refused_with_paths(forms: Mapping[str, Any]) -> None:
    bad = SLA.model_copy(update={"small_sample": {"measures": ["met", "answered"]}})
    bad = ReportSpec.model_validate(bad.model_dump())
    with pytest.raises(DefinitionError) as err:
        compile_report(bad, app="aftersales", forms=forms, dialect="postgresql")
    assert [(p.code, p.path) for p in err.value.problems] == [
        ("report.unknown-key", "/small_sample/measures/1")
    ]
    spec = DashboardSpec.model_validate(
        {
            "key": "d",
            "label": "d",
            "widgets": [
                widget(card="ratio").model_dump(),
                widget(key="v", small_sample={"measures": ["nope"]}).model_dump(),
            ],
        }  # fmt: skip
    )
    with pytest.raises(DefinitionError) as err:
        check_dashboard(spec, reports={"sla": SLA}, field_exists=lambda _r, _f: True)
    assert [(p.code, p.path) for p in err.value.problems] == [
        ("dashboard.unknown-measure", "/widgets/0/card"),
        ("dashboard.unknown-measure", "/widgets/1/small_sample/measures/0"),
    ]


def test_flags_of_rows(forms: Mapping[str, Any]) -> None:
    spec = widget(small_sample={"measures": ["met", "breached"], "below": 10},
                  provisional_days=7).applied_to(SLA)  # fmt: skip
    compiled = compile_report(spec, app="aftersales", forms=forms, dialect="postgresql")
    rows = [(date(2025, 12, 8), 9, 1, 0.9), (date(2025, 12, 15), 5, 0, 1.0),
            (date(2025, 12, 22), 20, 2, 0.9), (date(2025, 12, 29), 1, 0, 1.0)]  # fmt: skip
    period = [FilterClause("response_by", "between", ["2025-12-08", "2025-12-31"])]
    meta = result_flags(compiled, rows, filters=period, now=NOW, compare=rows[:1])
    assert meta["small_sample"] == {"below": 10, "measures": ["met", "breached"],
                                    "rows": [1, 3], "compare_rows": []}  # fmt: skip
    # today in Shanghai is Jan 1: a week is provisional when it ended after Dec 25
    assert meta["provisional"] == {"days": 7, "period": True, "rows": [2, 3]}
    old = [FilterClause("response_by", "between", ["2025-11-01", "2025-11-30"])]
    assert result_flags(compiled, [], filters=old, now=NOW)["provisional"]["period"] is False
    open_ended = [FilterClause("response_by", "gte", "2025-11-01")]
    assert result_flags(compiled, [], filters=open_ended, now=NOW)["provisional"]["period"]


def test_the_previous_period_has_the_same_length_just_before(forms: Mapping[str, Any]) -> None:
    spec = widget(compare="previous_period").applied_to(SLA)
    compiled = compile_report(spec, app="aftersales", forms=forms, dialect="postgresql")
    region = FilterClause("region", "in", ["east"])
    july = [region, FilterClause("response_by", "between", ["2025-07-01", "2025-07-31"])]
    moved = shifted_filters(compiled, july)
    assert moved == [region, FilterClause("response_by", "between",
                                          [date(2025, 5, 31), date(2025, 6, 30)])]  # fmt: skip
    assert shifted_filters(compiled, [region]) is None
