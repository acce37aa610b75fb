"""Business calendar definitions (bundle kind `calendars/`): time zone, weekly working hours,
holidays and make-up working days (调休).

The model fixes the file format; `check_calendar` finds what the shape cannot express
(overlapping hours, a date both a holiday and a make-up day, an unknown time zone) and reports
every problem at once, each with its JSON pointer.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from datetime import date as Date  # field types in classes that also have a `date` field
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from engine.errors import DefinitionError, Problem

if TYPE_CHECKING:
    from engine.bundles.semantics import BundleView
from engine.labels import Label
from engine.spec_base import Key, SpecModel

CALENDAR_SCHEMA_VERSION = 1

ClockTime = Annotated[
    str,
    Field(
        pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$",
        description="Local wall-clock time HH:MM; 24:00 ends an interval at midnight",
    ),
]


def minutes_of(clock: str) -> int:
    """Minutes after midnight of an `HH:MM` clock time (24:00 → 1440)."""
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes)


class Hours(SpecModel):
    """One working interval [start, end) in local time."""

    start: ClockTime
    end: ClockTime


class WeeklyHours(Hours):
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday")


class Holiday(SpecModel):
    """A day off (or the days `date`..`until`, inclusive), even when it falls on a weekday."""

    date: Date
    until: Date | None = None
    name: Label | None = None

    def days(self) -> list[Date]:
        last = self.until or self.date
        return [Date.fromordinal(n) for n in range(self.date.toordinal(), last.toordinal() + 1)]


class WorkdayOverride(SpecModel):
    """A make-up working day; worked with Monday's hours unless `hours` are given."""

    date: Date
    name: Label | None = None
    hours: tuple[Hours, ...] = ()


class CalendarSpec(SpecModel):
    schema_version: Literal[1] = 1
    key: Key
    label: Label | None = None
    description: Label | None = None
    timezone: str = Field("Asia/Shanghai", min_length=1, description="IANA time zone name")
    always_open: bool = Field(False, description="Every minute is business time (7x24)")
    weekly_hours: tuple[WeeklyHours, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    workday_overrides: tuple[WorkdayOverride, ...] = ()


def _interval_problems(rows: tuple[Hours, ...], pointer: str) -> list[Problem]:
    """Empty or reversed intervals, and overlaps between rows of the same day group."""
    problems: list[Problem] = []
    spans: list[tuple[int, int, int]] = []
    for index, row in enumerate(rows):
        start, end = minutes_of(row.start), minutes_of(row.end)
        if start >= end:
            problems.append(
                Problem(
                    "calendar.empty-interval",
                    f"{pointer}/{index}/end",
                    f"the interval {row.start}–{row.end} ends before it starts",
                    hint="end must be later than start (use 24:00 for midnight)",
                )
            )
        else:
            spans.append((start, end, index))
    spans.sort()
    for (_, prev_end, prev_index), (start, _, index) in zip(spans, spans[1:], strict=False):
        if start < prev_end:
            problems.append(
                Problem(
                    "calendar.overlapping-hours",
                    f"{pointer}/{index}",
                    f"this interval overlaps row {prev_index}",
                    hint="split the day into intervals that do not overlap",
                )
            )
    return problems


def check_calendar(spec: CalendarSpec) -> list[Problem]:
    """Every problem of a calendar that its shape does not already rule out."""
    problems: list[Problem] = []
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem(
                "calendar.unknown-timezone",
                "/timezone",
                f"unknown time zone {spec.timezone!r}",
                hint="use an IANA name such as Asia/Shanghai",
            )
        )
    if spec.always_open:
        for name in ("weekly_hours", "holidays", "workday_overrides"):
            if getattr(spec, name):
                problems.append(
                    Problem(
                        "calendar.always-open-conflict",
                        f"/{name}",
                        f"an always-open calendar cannot have {name}",
                        hint="remove always_open or this list",
                    )
                )
        return problems
    if not spec.weekly_hours:
        problems.append(
            Problem(
                "calendar.no-hours",
                "/weekly_hours",
                "the calendar has no weekly working hours",
                hint="add weekly_hours rows, or set always_open: true",
            )
        )
    by_day: dict[int, list[int]] = defaultdict(list)
    for index, row in enumerate(spec.weekly_hours):
        by_day[row.weekday].append(index)
    for indexes in by_day.values():
        rows = tuple(spec.weekly_hours[i] for i in indexes)
        for problem in _interval_problems(rows, ""):
            local, _, rest = problem.path[1:].partition("/")
            path = f"/weekly_hours/{indexes[int(local)]}" + (f"/{rest}" if rest else "")
            problems.append(Problem(problem.code, path, problem.message, hint=problem.hint))
    holiday_rows: dict[date, int] = {}
    for index, holiday in enumerate(spec.holidays):
        if holiday.until is not None and holiday.until < holiday.date:
            problems.append(
                Problem(
                    "calendar.invalid-range",
                    f"/holidays/{index}/until",
                    "until is earlier than date",
                )
            )
        for day in holiday.days():
            holiday_rows.setdefault(day, index)
    seen: set[date] = set()
    for index, override in enumerate(spec.workday_overrides):
        pointer = f"/workday_overrides/{index}"
        if override.date in holiday_rows:
            problems.append(
                Problem(
                    "calendar.date-conflict",
                    f"{pointer}/date",
                    f"{override.date} is both a make-up working day and a holiday "
                    f"(holidays/{holiday_rows[override.date]})",
                    hint="a date is either worked or off: remove it from one list",
                )
            )
        if override.date in seen:
            problems.append(
                Problem(
                    "calendar.duplicate-date",
                    f"{pointer}/date",
                    f"{override.date} is listed twice as a make-up working day",
                )
            )
        seen.add(override.date)
        problems.extend(_interval_problems(override.hours, f"{pointer}/hours"))
    return problems


def validate_calendar(spec: CalendarSpec) -> CalendarSpec:
    """`spec` if it is sound, else DefinitionError with every problem."""
    problems = check_calendar(spec)
    if problems:
        raise DefinitionError(problems)
    return spec


def check_kind(kind: str, view: BundleView) -> list[Problem]:
    """Bundle check: every calendar's problems, located in its file."""
    problems: list[Problem] = []
    for key, spec in sorted(view.definitions[kind].items()):
        source = view.sources[(kind, key)]
        assert isinstance(spec, CalendarSpec)
        problems.extend(p.located(source=source) for p in check_calendar(spec))
    return problems


SPEC_MODEL = CalendarSpec

__all__ = [
    "CALENDAR_SCHEMA_VERSION",
    "SPEC_MODEL",
    "check_kind",
    "CalendarSpec",
    "ClockTime",
    "Holiday",
    "Hours",
    "WeeklyHours",
    "WorkdayOverride",
    "check_calendar",
    "minutes_of",
    "validate_calendar",
]
