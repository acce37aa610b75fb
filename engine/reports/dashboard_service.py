"""Running a dashboard: check it, turn filters and clicks into per-widget filters, run every
widget concurrently (one thread and connection each) through the result cache.

A widget the actor may not read, or whose report does not compile on this database (median on
SQLite), comes back with an `error` instead of failing the page; a bad filter value fails the
whole request, since every widget would show something misleading.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import DefinitionError, NotFoundError, PermissionDenied
from engine.forms.record_access import Who
from engine.reports.cache import read_data_versions
from engine.reports.card_drill import widget_drill_step
from engine.reports.compiler import CompiledReport
from engine.reports.dashboard import Click, check_dashboard, widget_filters
from engine.reports.dashboard_drill import records_query
from engine.reports.dataset import Dataset, build_dataset
from engine.reports.query import FilterClause
from engine.reports.runs import Run, run_in_threads
from engine.reports.service import ReportService
from engine.reports.spec import DashboardSpec, ReportSpec, Widget
from engine.storage.records import DefinitionVersionRecord
from engine.storage.uow import UnitOfWork

DASHBOARD_KIND = "dashboards"
REPORT_KIND = "reports"
DASHBOARD_NOT_FOUND = "dashboard.not-found"
MAX_CHECKED = 256


class DashboardService:
    """Dashboards of installed apps, run for an actor."""

    def __init__(self, runs: ReportService, *, workers: int = 8) -> None:
        self._runs = runs
        self._workers = workers
        self._checked: dict[tuple[Any, ...], tuple[DashboardSpec, dict[str, ReportSpec]]] = {}
        self._lock = threading.Lock()

    def load(self, uow: UnitOfWork, *, app: str, key: str) -> DashboardSpec:
        """The current dashboard definition.

        Raises:
            NotFoundError: `dashboard.not-found`.
        """
        return DashboardSpec.model_validate(self._record(uow, app, key).body)

    def _record(self, uow: UnitOfWork, app: str, key: str) -> DefinitionVersionRecord:
        try:
            return uow.definitions.get_current(app=app, kind=DASHBOARD_KIND, key=key)
        except NotFoundError as err:
            raise NotFoundError(
                f"dashboard {app}.{key} is not installed", code=DASHBOARD_NOT_FOUND
            ) from err

    def _report_records(
        self, uow: UnitOfWork, app: str, spec: DashboardSpec
    ) -> dict[str, DefinitionVersionRecord]:
        keys = {w.report for w in spec.widgets} | {a.report for a in spec.alerts}
        found: dict[str, DefinitionVersionRecord] = {}
        for key in sorted(keys):
            try:
                found[key] = uow.definitions.get_current(app=app, kind=REPORT_KIND, key=key)
            except NotFoundError:
                continue
        return found

    def checked(
        self, uow: UnitOfWork, *, app: str, key: str
    ) -> tuple[DashboardSpec, dict[str, ReportSpec]]:
        """The dashboard and its reports, checked against the app's forms. The check (and
        the parsing) runs once per version of the app's definitions: one query otherwise.

        Raises:
            NotFoundError: `dashboard.not-found`.
            DefinitionError: every problem, with its path in the dashboard (`dashboard.*`).
        """
        digests = sorted(
            (d.kind, d.key, d.current_digest)
            for d in uow.definitions.list_definitions(app=app)
            if d.kind != DASHBOARD_KIND or d.key == key
        )
        memo_key = (app, key, tuple(digests))
        with self._lock:
            found = self._checked.get(memo_key)
        if found is not None:
            return found
        spec = DashboardSpec.model_validate(self._record(uow, app, key).body)
        records = self._report_records(uow, app, spec)
        reports = {k: ReportSpec.model_validate(r.body) for k, r in records.items()}
        self._check(uow, app, spec, reports)
        with self._lock:
            self._checked[memo_key] = (spec, reports)
            while len(self._checked) > MAX_CHECKED:
                self._checked.pop(next(iter(self._checked)))
        return spec, reports

    def _check(
        self, uow: UnitOfWork, app: str, spec: DashboardSpec, reports: dict[str, ReportSpec]
    ) -> None:
        datasets: dict[str, Any] = {}

        def field_exists(report: ReportSpec, path: str) -> bool:
            if report.key not in datasets:
                datasets[report.key] = self._dataset(uow, app, report)
            try:
                # a copy: resolving a path may add a join to the dataset it resolves on
                replace(datasets[report.key], sources=dict(datasets[report.key].sources)).resolve(
                    path, where=""
                )
            except DefinitionError:
                return False
            return True

        check_dashboard(spec, reports=reports, field_exists=field_exists)

    def _dataset(self, uow: UnitOfWork, app: str, report: ReportSpec) -> Dataset:
        """The report's dataset, from its compiled form (shared with the widget runs) when
        it compiles, else built on its own so that field checks still run."""
        try:
            return self._runs.compile(uow, app=app, spec=report).dataset
        except DefinitionError:
            form = str(report.dataset.form).removeprefix(f"{app}.")
            forms = self._runs.registry.form(uow, app=app, key=form).forms
            return build_dataset(report.dataset, app=app, forms=forms)

    def run(
        self,
        *,
        app: str,
        key: str,
        actor: Who,
        values: Mapping[str, Any] | None = None,
        clicks: Sequence[Click] = (),
        drill: Mapping[str, Sequence[Any]] | None = None,
        drill_by: Mapping[str, str] | None = None,
        timezone: str | None = None,
    ) -> dict[str, Any]:
        """Every widget's result and chart, with the layout, filters and refresh interval.

        `drill` maps a widget key to the values clicked so far down its drill path;
        `drill_by` a card widget's key to the `drill_down` field its breakdown uses.

        Raises:
            NotFoundError, DefinitionError: no such dashboard, or it does not fit the app.
            ReportQueryError: a filter, click or drill value that does not fit.
        """
        drill, drill_by = drill or {}, drill_by or {}
        with self._runs.unit() as uow:
            spec, reports = self.checked(uow, app=app, key=key)
            today = self._today(timezone)
            filters = widget_filters(
                spec, reports=reports, values=values or {}, clicks=clicks, today=today
            )
            # Compile every widget here, in one unit of work (the app's forms are read once),
            # and read the data versions of all their forms in one query: the threads then
            # only check access and run (or find cached) their statement.
            dates = _date_bindings(spec)
            plans = [
                self._plan(
                    uow,
                    app,
                    widget,
                    reports[widget.report],
                    filters[widget.key],
                    _Drill(
                        tuple(drill.get(widget.key, ())),
                        drill_by.get(widget.key),
                        dates.get(widget.key),
                    ),
                    timezone,
                )  # fmt: skip
                for widget in spec.widgets
            ]
            forms = {f for plan in plans if plan.compiled is not None for f in plan.compiled.forms}
            versions = read_data_versions(uow.conn, app=app, forms=forms)
        tasks = [_bind(self._widget, plan, actor, timezone, versions) for plan in plans]
        widgets = run_in_threads(tasks, workers=self._workers)
        return {
            "dashboard": spec.key,
            "label": spec.label,
            "refresh_seconds": spec.refresh_seconds,
            "filters": [f.model_dump(mode="json", exclude={"bindings"}) for f in spec.filters],
            "widgets": widgets,
        }

    def _today(self, timezone: str | None) -> date:
        zone = ZoneInfo(timezone) if timezone else ZoneInfo("UTC")
        return self._runs.clock().astimezone(zone).date()

    def _plan(
        self,
        uow: UnitOfWork,
        app: str,
        widget: Widget,
        report: ReportSpec,
        filters: list[FilterClause],
        drill: _Drill,
        timezone: str | None,
    ) -> _Plan:
        out: dict[str, Any] = {
            "key": widget.key,
            "title": widget.title,
            "report": widget.report,
            "layout": {"x": widget.x, "y": widget.y, "w": widget.w, "h": widget.h},
            "links_to": list(widget.links_to),
            "drill_down": list(widget.drill_down),
        }
        report = widget.applied_to(report)  # the widget's card, compare, n<30, provisional
        path = drill.path
        step = widget_drill_step(report, widget, path=path, by=drill.by, date_field=drill.date)
        clauses = tuple(filters) + step.filters
        out["drill"] = {"level": step.level, "path": list(path)}
        if widget.card is not None and widget.drill_down:
            out["drill"]["by"] = drill.by or widget.drill_down[0]
        if step.report is None:
            out["drill"]["records"] = records_query(report, clauses)
            return _Plan(out, None, clauses)
        try:
            compiled = self._runs.compile(uow, app=app, spec=step.report, timezone=timezone)
        except DefinitionError as err:  # e.g. a median on SQLite: this widget only
            out["error"] = _error(err)
            return _Plan(out, None, clauses)
        return _Plan(out, compiled, clauses)

    def _widget(
        self, plan: _Plan, actor: Who, timezone: str | None, versions: Mapping[str, int]
    ) -> dict[str, Any]:
        out = dict(plan.out)
        if plan.compiled is None:
            return out
        try:
            with self._runs.unit() as uow:
                out.update(
                    self._runs.payload(
                        uow,
                        plan.compiled,
                        actor=actor,
                        run=Run(plan.clauses),
                        timezone=timezone,
                        versions=versions,
                    )  # fmt: skip
                )
        except (PermissionDenied, DefinitionError) as err:
            out["error"] = _error(err)
        return out


@dataclass(frozen=True, slots=True)
class _Drill:
    """A widget's drill request: the clicked path, a card's breakdown field, and the field
    its date-range filter is bound to (a card's weekly trend)."""

    path: tuple[Any, ...]
    by: str | None
    date: str | None


def _date_bindings(spec: DashboardSpec) -> dict[str, str]:
    """Widget key -> the field its first date-range filter is bound to (its event date)."""
    found: dict[str, str] = {}
    for global_filter in spec.filters:
        if global_filter.type == "date_range":
            for widget, field in global_filter.bindings.items():
                found.setdefault(widget, field)
    return found


@dataclass(frozen=True, slots=True)
class _Plan:
    """A widget ready to run: its answer so far, its compiled query (None: nothing to run)
    and its request filters."""

    out: dict[str, Any]
    compiled: CompiledReport | None
    clauses: tuple[FilterClause, ...]


def _error(err: PermissionDenied | DefinitionError) -> dict[str, Any]:
    out: dict[str, Any] = {"code": err.code, "message": err.message}
    if isinstance(err, DefinitionError):
        out["problems"] = [p.to_dict() for p in err.problems]
    return out


def _bind(function: Any, *args: Any) -> Any:
    return lambda: function(*args)


__all__ = ["DASHBOARD_KIND", "DASHBOARD_NOT_FOUND", "DashboardService"]
