"""Running a dashboard: check it, turn filters and clicks into per-widget filters, run every
widget concurrently (one thread and connection each) through the result cache.

A widget the actor may not read comes back with an `error` instead of failing the page; a bad
filter value fails the whole request, since every widget would show something misleading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import DefinitionError, NotFoundError, PermissionDenied
from engine.forms.record_access import Who
from engine.reports.cache_runs import CachedRuns, Run, run_in_threads
from engine.reports.dashboard import Click, check_dashboard, widget_filters
from engine.reports.dashboard_drill import drill_step, records_query
from engine.reports.dataset import build_dataset
from engine.reports.query import FilterClause
from engine.reports.spec import DashboardSpec, ReportSpec, Widget
from engine.storage.uow import UnitOfWork

DASHBOARD_KIND = "dashboards"
REPORT_KIND = "reports"
DASHBOARD_NOT_FOUND = "dashboard.not-found"


class DashboardService:
    """Dashboards of installed apps, run for an actor."""

    def __init__(self, runs: CachedRuns, *, workers: int = 8) -> None:
        self._runs = runs
        self._workers = workers

    def load(self, uow: UnitOfWork, *, app: str, key: str) -> DashboardSpec:
        """The current dashboard definition.

        Raises:
            NotFoundError: `dashboard.not-found`.
        """
        try:
            record = uow.definitions.get_current(app=app, kind=DASHBOARD_KIND, key=key)
        except NotFoundError as err:
            raise NotFoundError(
                f"dashboard {app}.{key} is not installed", code=DASHBOARD_NOT_FOUND
            ) from err
        return DashboardSpec.model_validate(record.body)

    def reports_of(
        self, uow: UnitOfWork, *, app: str, spec: DashboardSpec
    ) -> dict[str, ReportSpec]:
        """The installed reports the widgets and alerts name (missing ones left out)."""
        keys = {w.report for w in spec.widgets} | {a.report for a in spec.alerts}
        found: dict[str, ReportSpec] = {}
        for key in sorted(keys):
            try:
                record = uow.definitions.get_current(app=app, kind=REPORT_KIND, key=key)
            except NotFoundError:
                continue
            found[key] = ReportSpec.model_validate(record.body)
        return found

    def check(self, uow: UnitOfWork, *, app: str, spec: DashboardSpec) -> dict[str, ReportSpec]:
        """Check `spec` against the app's reports and forms; returns the reports.

        Raises:
            DefinitionError: every problem, with its path in the dashboard (`dashboard.*`).
        """
        reports = self.reports_of(uow, app=app, spec=spec)
        datasets: dict[str, Any] = {}

        def field_exists(report: ReportSpec, path: str) -> bool:
            if report.key not in datasets:
                form = str(report.dataset.form).removeprefix(f"{app}.")
                forms = self._runs.registry.form(uow, app=app, key=form).forms
                datasets[report.key] = build_dataset(report.dataset, app=app, forms=forms)
            try:
                datasets[report.key].resolve(path, where="")
            except DefinitionError:
                return False
            return True

        check_dashboard(spec, reports=reports, field_exists=field_exists)
        return reports

    def run(
        self,
        *,
        app: str,
        key: str,
        actor: Who,
        values: Mapping[str, Any] | None = None,
        clicks: Sequence[Click] = (),
        drill: Mapping[str, Sequence[Any]] | None = None,
        timezone: str | None = None,
    ) -> dict[str, Any]:
        """Every widget's result and chart, with the layout, filters and refresh interval.

        `drill` maps a widget key to the values clicked so far down its drill path.

        Raises:
            NotFoundError, DefinitionError: no such dashboard, or it does not fit the app.
            ReportQueryError: a filter, click or drill value that does not fit.
        """
        with self._runs.unit() as uow:
            spec = self.load(uow, app=app, key=key)
            reports = self.check(uow, app=app, spec=spec)
        today = self._today(timezone)
        filters = widget_filters(
            spec, reports=reports, values=values or {}, clicks=clicks, today=today
        )
        drill = drill or {}
        tasks = [
            _bind(
                self._widget,
                app,
                widget,
                reports[widget.report],
                filters[widget.key],
                tuple(drill.get(widget.key, ())),
                actor,
                timezone,
            )  # fmt: skip
            for widget in spec.widgets
        ]
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

    def _widget(
        self,
        app: str,
        widget: Widget,
        report: ReportSpec,
        filters: list[FilterClause],
        path: tuple[Any, ...],
        actor: Who,
        timezone: str | None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": widget.key,
            "title": widget.title,
            "report": widget.report,
            "layout": {"x": widget.x, "y": widget.y, "w": widget.w, "h": widget.h},
            "links_to": list(widget.links_to),
            "drill_down": list(widget.drill_down),
        }
        step = drill_step(report, widget.drill_down, path)
        clauses = tuple(filters) + step.filters
        out["drill"] = {"level": step.level, "path": list(path)}
        if step.report is None:
            out["drill"]["records"] = records_query(report, clauses)
            return out
        try:
            with self._runs.unit() as uow:
                compiled = self._runs.compile(uow, app=app, spec=step.report, timezone=timezone)
                out.update(
                    self._runs.payload(
                        uow, compiled, actor=actor, run=Run(clauses), timezone=timezone
                    )
                )
        except PermissionDenied as err:
            out["error"] = {"code": err.code, "message": err.message}
        return out


def _bind(function: Any, *args: Any) -> Any:
    return lambda: function(*args)


__all__ = ["DASHBOARD_KIND", "DASHBOARD_NOT_FOUND", "DashboardService"]
