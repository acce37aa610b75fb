"""The drill path of a KPI card: card → weekly trend → breakdown by a chosen dimension →
records (→ a record, through the records list's links).

A card has no dimension, so the path is not a chain of clicked dimension values as for
charts (engine/reports/dashboard_drill.py). The path is `[card, week, value]`:

- `[]`: the card.
- `[card]` (any value, e.g. the card's key): the card's measure per week of the widget's
  event date, the field its dashboard's date-range filter is bound to.
- `[card, week]`: that week (Monday to Sunday) grouped by the chosen dimension, one of the
  widget's `drill_down` fields (the request's `by`; the first by default).
- `[card, week, value]` (or `[card, week]` when the widget has no `drill_down`): no query;
  the records-list request of the rows behind it.

Every other filter of the widget (global filters, clicks) stays applied at each level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from engine.errors import FieldError
from engine.reports.dashboard_drill import (
    DRILL_TOO_DEEP,
    NOT_DRILLABLE,
    DrillStep,
    drill_step,
    period_of,
)
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.spec import Chart, Dimension, ReportSpec, Widget

BAD_DRILL_DIMENSION = "dashboard.bad-drill-dimension"
WEEK = "week"


def _fail(where: str, code: str, message: str) -> ReportQueryError:
    return ReportQueryError([FieldError(where, code, message)])


def _chosen(widget: Widget, by: str | None) -> str | None:
    if by is None:
        return widget.drill_down[0] if widget.drill_down else None
    if by not in widget.drill_down:
        choices = ", ".join(widget.drill_down) or "none"
        message = f"widget {widget.key!r} drills by {choices}, not {by!r}"
        raise _fail("drill/by", BAD_DRILL_DIMENSION, message)
    return by


def _grouped(
    card: ReportSpec, measure: str, dimension: Dimension, chart: Literal["line", "bar"]
) -> ReportSpec:
    """The card's report grouped by `dimension`, charting its measure (no compare: the
    previous period is the card's, not each group's)."""
    return card.model_copy(
        update={
            "dimensions": (dimension,),
            "chart": Chart(type=chart, x=dimension.key, y=(measure,)),
            "compare": None,
        }
    )


def card_drill_step(
    card: ReportSpec,
    widget: Widget,
    *,
    date_field: str | None,
    path: Sequence[Any],
    by: str | None = None,
) -> DrillStep:
    """The query (or records) of a card widget at the level `path` reaches.

    `card` is the widget's report with the card applied (`Widget.applied_to`).

    Raises:
        ReportQueryError: `dashboard.not-drillable` (`drill/0`) for a card whose widget has no
            date-range binding; `dashboard.bad-drill-dimension` (`drill/by`) for a `by` not in
            the widget's `drill_down`; `dashboard.drill-too-deep` for a longer path.
    """
    assert widget.card is not None
    field = _chosen(widget, by)
    if not path:
        return DrillStep(0, card, ())
    if date_field is None:
        message = f"card {widget.key!r} has no date-range filter binding to trend by week"
        raise _fail("drill/0", NOT_DRILLABLE, message)
    levels = 3 if field is not None else 2  # trend, breakdown, records
    if len(path) > levels:
        message = f"a card drills {levels - 1} levels before the records"
        raise _fail(f"drill/{levels}", DRILL_TOO_DEEP, message)
    if len(path) == 1:
        trend = Dimension(key=WEEK, label={"en": "Week", "zh": "周"}, field=date_field, grain=WEEK)
        return DrillStep(1, _grouped(card, widget.card, trend, "line"), ())
    low, high = period_of(path[1], WEEK, where="drill/1")
    clauses = [FilterClause(date_field, "between", [low.isoformat(), high.isoformat()])]
    if field is not None and len(path) == 3:
        clauses.append(FilterClause(field, "eq", path[2]))
    if len(path) == levels:
        return DrillStep(len(path), None, tuple(clauses))
    assert field is not None
    breakdown = Dimension(key=field.replace(".", "_"), field=field)
    return DrillStep(2, _grouped(card, widget.card, breakdown, "bar"), tuple(clauses))


def widget_drill_step(
    report: ReportSpec,
    widget: Widget,
    *,
    path: Sequence[Any],
    by: str | None,
    date_field: str | None,
) -> DrillStep:
    """A widget's drill level: a card's path (above), else the chart's dimension chain.

    Raises:
        ReportQueryError: as `card_drill_step` and `drill_step`; a `by` on a chart widget is
            `dashboard.bad-drill-dimension` (its drill fields come in order).
    """
    if widget.card is not None:
        return card_drill_step(report, widget, date_field=date_field, path=path, by=by)
    if by is not None:
        message = f"widget {widget.key!r} is not a card: its drill fields come in order"
        raise _fail("drill/by", BAD_DRILL_DIMENSION, message)
    return drill_step(report, widget.drill_down, path)


__all__ = ["BAD_DRILL_DIMENSION", "card_drill_step", "widget_drill_step"]
