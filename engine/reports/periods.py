"""The request's period and what depends on it: the previous period a `compare` runs over,
and the result flags the cards need (the n<30 guard and provisional periods).

The period is the first date range among the request's filters on a date or datetime field
(the dashboard's period filter lands there). Date bounds are local days in the report's zone,
inclusive: `between [June 1, June 30]` ends at July 1 00:00.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from engine.forms.listing import DATE, DATETIME
from engine.reports.compiler import CompiledReport
from engine.reports.query import FilterClause

MONTHS = {"month": 1, "quarter": 3, "year": 12}


@dataclass(frozen=True, slots=True)
class Period:
    index: int  # position of the clause in the request's filters
    clause: FilterClause
    low: Any  # date or datetime; None when open
    high: Any


def request_period(compiled: CompiledReport, filters: Sequence[FilterClause]) -> Period | None:
    """The first between / gte / lte filter on a date or datetime field, if any."""
    for index, clause in enumerate(filters):
        if clause.op not in ("between", "gte", "lte"):
            continue
        try:
            column = replace(compiled.dataset, sources=dict(compiled.dataset.sources)).resolve(
                clause.field, where="/filters"
            )
            if column.family not in (DATE, DATETIME):
                continue
            if clause.op == "between":
                low, high = (_as_time(v) for v in clause.value)
            elif clause.op == "gte":
                low, high = _as_time(clause.value), None
            else:
                low, high = None, _as_time(clause.value)
        except Exception:  # noqa: BLE001 - a bad field or value is reported by the main run
            continue
        return Period(index, clause, low, high)
    return None


def shifted_filters(
    compiled: CompiledReport, filters: Sequence[FilterClause]
) -> list[FilterClause] | None:
    """`filters` with the period's date range moved to the previous period of the same length
    just before it (or the same dates a year earlier); None without a closed date range."""
    period = request_period(compiled, filters)
    if period is None or period.low is None or period.high is None:
        return None
    low, high = period.low, period.high
    if compiled.spec.compare == "previous_year":
        moved = [_year_back(low), _year_back(high)]
    else:
        span = (high - low) + (timedelta(days=1) if _is_day(low) else timedelta(0))
        moved = [low - span, high - span]
    shifted = list(filters)
    shifted[period.index] = FilterClause(period.clause.field, "between", moved)
    return shifted


def result_flags(
    compiled: CompiledReport,
    rows: Sequence[Sequence[Any]],
    *,
    filters: Sequence[FilterClause],
    now: datetime,
    compare: Sequence[Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """`meta` entries for the report's n<30 guard and provisional window (empty if neither)."""
    spec, meta = compiled.spec, {}
    if spec.small_sample is not None:
        keys = spec.small_sample.measures
        below = spec.small_sample.below
        indexes = [i for i, c in enumerate(compiled.columns) if c.key in keys]
        flag: dict[str, Any] = {"below": below, "measures": list(keys)}
        flag["rows"] = _small(rows, indexes, below)
        if compare is not None:
            flag["compare_rows"] = _small(compare, indexes, below)
        meta["small_sample"] = flag
    if spec.provisional_days is not None:
        meta["provisional"] = _provisional(compiled, rows, filters, now)
    return meta


def _small(rows: Sequence[Sequence[Any]], indexes: list[int], below: int) -> list[int]:
    return [n for n, row in enumerate(rows) if sum(row[i] or 0 for i in indexes) < below]


def _provisional(
    compiled: CompiledReport,
    rows: Sequence[Sequence[Any]],
    filters: Sequence[FilterClause],
    now: datetime,
) -> dict[str, Any]:
    """A period is provisional until `provisional_days` have passed since it ended: later
    events (a reopen, a survey answer) can still change its figures."""
    days = compiled.spec.provisional_days or 0
    cutoff = now.astimezone(compiled.zone).date() - timedelta(days=days)
    period = request_period(compiled, filters)
    end = _end_day(period.high, compiled) if period is not None and period.high else None
    # no upper bound: the period runs to now, so it has not ended at all
    out: dict[str, Any] = {"days": days, "period": end is None or end > cutoff}
    grained = [(i, d.grain) for i, d in enumerate(compiled.dimensions) if d.grain]
    if grained:
        index, grain = grained[0]
        out["rows"] = [
            n
            for n, row in enumerate(rows)
            if isinstance(row[index], date) and _bucket_end(row[index], grain, end) > cutoff
        ]
    return out


def _end_day(high: Any, compiled: CompiledReport) -> date:
    """The local day the period ends on (exclusive)."""
    if isinstance(high, datetime):
        local = high.astimezone(compiled.zone) if high.tzinfo else high
        return local.date() + timedelta(days=0 if local.time() == datetime.min.time() else 1)
    day: date = high + timedelta(days=1)
    return day


def _bucket_end(start: date, grain: str | None, period_end: date | None) -> date:
    if grain == "day":
        end = start + timedelta(days=1)
    elif grain == "week":
        end = start + timedelta(days=7)
    else:
        months = start.month - 1 + MONTHS.get(grain or "month", 1)
        end = date(start.year + months // 12, months % 12 + 1, 1)
    return min(end, period_end) if period_end is not None else end


def _as_time(value: Any) -> Any:
    if isinstance(value, date):
        return value
    text = str(value)
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def _is_day(value: Any) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _year_back(value: Any) -> Any:
    try:
        return value.replace(year=value.year - 1)
    except ValueError:  # 29 February
        return value.replace(year=value.year - 1, day=28)


__all__ = ["Period", "request_period", "result_flags", "shifted_filters"]
