"""Checks of a dashboard's `deliveries` that their shape cannot express: the widgets, filters
(and the values' shape) and roles they name, the schedule's time zone and duplicate keys. The
bundle check runs them on import (engine/bundles/semantics.py), located in the dashboard file."""

from __future__ import annotations

from collections.abc import Set
from datetime import date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import Problem
from engine.reports.dashboard import widget_filters
from engine.reports.query import ReportQueryError
from engine.reports.spec import DashboardSpec, Delivery

if TYPE_CHECKING:
    from engine.bundles.semantics import BundleView

BAD_SCHEDULE = "report.bad-schedule"
UNKNOWN_WIDGET = "dashboard.unknown-widget"
UNKNOWN_FILTER = "dashboard.unknown-filter"
UNKNOWN_ROLE = "dashboard.unknown-role"
DUPLICATE_KEY = "dashboard.duplicate-key"


def check_deliveries(spec: DashboardSpec, *, roles: Set[str] | None) -> list[Problem]:
    """Every problem of `spec`'s deliveries; `roles` are the app's role keys (None: unknown,
    not checked)."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, delivery in enumerate(spec.deliveries):
        path = f"/deliveries/{i}"
        if delivery.key in seen:
            message = f"delivery key {delivery.key!r} is used twice"
            problems.append(Problem(DUPLICATE_KEY, f"{path}/key", message))
        seen.add(delivery.key)
        problems += _check_delivery(spec, delivery, path, roles)
    return problems


def _check_delivery(
    spec: DashboardSpec, delivery: Delivery, path: str, roles: Set[str] | None
) -> list[Problem]:
    problems: list[Problem] = []
    try:
        ZoneInfo(delivery.schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"unknown time zone {delivery.schedule.timezone!r}"
        problems.append(Problem(BAD_SCHEDULE, f"{path}/schedule/timezone", message))
    widgets = {w.key for w in spec.widgets}
    named = [(f"{path}/summary/{j}", key) for j, key in enumerate(delivery.summary or ())]
    named += [(f"{path}/attachments/{j}/widget", a.widget)
              for j, a in enumerate(delivery.attachments)]  # fmt: skip
    for pointer, key in named:
        if key not in widgets:
            problems.append(Problem(UNKNOWN_WIDGET, pointer, f"no widget {key!r} on the dashboard"))
    filters = {f.key for f in spec.filters}
    for key in delivery.filters:
        if key not in filters:
            message = f"the dashboard has no filter {key!r}"
            problems.append(Problem(UNKNOWN_FILTER, f"{path}/filters/{key}", message))
    if all(key in filters for key in delivery.filters):
        try:  # the values' shape: relative ranges do not depend on the day
            widget_filters(spec, reports={}, values=delivery.filters, today=date(2000, 1, 1))
        except ReportQueryError as err:
            problems += [Problem(e.code, f"{path}/{e.loc}", e.message) for e in err.errors]
    for j, role in enumerate(delivery.roles):
        if roles is not None and role not in roles:
            message = f"no role {role!r} in this app"
            problems.append(Problem(UNKNOWN_ROLE, f"{path}/roles/{j}", message))
    return problems


def check_kind(kind: str, view: BundleView) -> list[Problem]:
    """Bundle check: every dashboard's deliveries against the bundle's roles."""
    present = view.present.get("roles")
    roles = None if present is None else frozenset(present)
    problems: list[Problem] = []
    for key, spec in sorted(view.definitions[kind].items()):
        if isinstance(spec, DashboardSpec):
            found = check_deliveries(spec, roles=roles)
            problems += [p.located(source=view.sources[(kind, key)]) for p in found]
    return problems


SPEC_MODEL = DashboardSpec

__all__ = [
    "BAD_SCHEDULE",
    "SPEC_MODEL",
    "UNKNOWN_ROLE",
    "check_deliveries",
    "check_kind",
]
