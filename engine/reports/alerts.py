"""Threshold alerts (数据预警): dashboard alerts evaluated by the worker on a schedule.

One job per dashboard (`report.alerts`, payload {app, dashboard}) evaluates the alerts that are
due, with full access (the system, not a user), then queues itself for the earliest next due
time. An alert notifies its users and roles when its condition starts holding (not again while
it keeps holding); its state is saved in the job's transaction, so a retried job does not
notify twice. A job that finds nothing due stops: when two chains were started for the same
dashboard, the later one dies out.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.jobs.types import JobContext, JobHandler
from engine.outbox.notifications import notify
from engine.reports.charts_data import category_label, json_cell
from engine.reports.recipients import find_recipients
from engine.reports.schedule import JobChain, installed, installed_all, next_interval
from engine.reports.service import ReportService
from engine.reports.spec import Alert, DashboardSpec
from engine.storage.tables_reports import report_alert_states
from engine.storage.uow import UnitOfWork

ALERT_JOB = "report.alerts"
DASHBOARD_KIND = "dashboards"
COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _chain(app: str, dashboard: str) -> JobChain:
    return JobChain.of(ALERT_JOB, "report-alerts", app, dashboard)


def schedule_alerts(conn: sa.Connection, *, app: str, dashboard: str, due_at: datetime) -> None:
    """Start (or keep) the evaluation chain of one dashboard's alerts."""
    suffix = due_at.isoformat(timespec="minutes")
    payload = {"app": app, "dashboard": dashboard}
    _chain(app, dashboard).queue(conn, due_at=due_at, suffix=suffix, payload=payload)


def schedule_app_alerts(uow: UnitOfWork, *, app: str, now: datetime) -> int:
    """Start the chains of every dashboard of `app` that has alerts (after an import)."""
    started = 0
    for spec in installed_all(uow, DashboardSpec, app=app, kind=DASHBOARD_KIND):
        if spec.alerts and not _chain(app, spec.key).is_running(uow.conn):
            schedule_alerts(uow.conn, app=app, dashboard=spec.key, due_at=now)
            started += 1
    return started


def _states(conn: sa.Connection, app: str, dashboard: str) -> dict[str, Mapping[str, Any]]:
    table = report_alert_states
    query = sa.select(table).where(table.c.app == app, table.c.dashboard == dashboard)
    return {str(row.alert): dict(row._mapping) for row in conn.execute(query)}


def _next_due(alert: Alert, state: Mapping[str, Any] | None, now: datetime) -> datetime:
    checked: datetime | None = state["checked_at"] if state else None
    return next_interval(checked, minutes=alert.every_minutes, now=now)


def recipients(conn: sa.Connection, *, app: str, alert: Alert) -> list[int]:
    """Active users named by username, or holding one of the alert's roles in `app`."""
    return find_recipients(conn, app=app, usernames=alert.users, roles=alert.roles)


def matching_rows(
    runs: ReportService, uow: UnitOfWork, *, app: str, alert: Alert
) -> tuple[list[str], float | None]:
    """Labels of the report rows where the condition holds, and the first row's value."""
    spec = runs.installed(uow, app=app, key=alert.report)
    compiled = runs.compile(uow, app=app, spec=spec)
    result, _ = runs.result(uow, compiled, actor=None)
    index = result.index(alert.measure)
    dimensions = [i for i, c in enumerate(result.columns) if c.role == "dimension"]
    compare = COMPARISONS[alert.op]
    hits: list[str] = []
    for row in result.rows:
        value = json_cell(row[index])
        if isinstance(value, int | float) and compare(value, alert.threshold):
            label = " / ".join(category_label(row[i]) for i in dimensions) or "total"
            hits.append(f"{label}: {value}")
    first = json_cell(result.rows[0][index]) if result.rows else None
    return hits, float(first) if isinstance(first, int | float) else None


def evaluate_alerts(ctx: JobContext) -> None:
    """The `report.alerts` handler (see the module docstring)."""
    app, key = str(ctx.payload["app"]), str(ctx.payload["dashboard"])
    uow = ctx.uow
    spec = installed(uow, DashboardSpec, app=app, kind=DASHBOARD_KIND, key=key)
    if spec is None or not spec.alerts:
        return
    runs = ReportService(uow.conn.engine, clock=lambda: ctx.now)
    states = _states(uow.conn, app, key)
    due = [a for a in spec.alerts if _next_due(a, states.get(a.key), ctx.now) <= ctx.now]
    if not due:
        return
    for alert in due:
        _evaluate(runs, uow, app=app, dashboard=spec, alert=alert,
                  state=states.get(alert.key), now=ctx.now)  # fmt: skip
    states = _states(uow.conn, app, key)
    next_due = min(_next_due(a, states.get(a.key), ctx.now) for a in spec.alerts)
    schedule_alerts(uow.conn, app=app, dashboard=key, due_at=max(next_due, ctx.now))


def _evaluate(
    runs: ReportService,
    uow: UnitOfWork,
    *,
    app: str,
    dashboard: DashboardSpec,
    alert: Alert,
    state: Mapping[str, Any] | None,
    now: datetime,
) -> None:
    hits, value = matching_rows(runs, uow, app=app, alert=alert)
    firing = bool(hits)
    was_firing = bool(state and state["firing"])
    fired_at = state["fired_at"] if state else None
    if firing and not was_firing:
        fired_at = now
        label = alert.label if isinstance(alert.label, str) else next(iter(alert.label.values()))
        notify(
            uow.conn,
            user_ids=recipients(uow.conn, app=app, alert=alert),
            subject=f"Alert: {label}",
            body="\n".join(hits[:50]),
            link=f"/apps/{app}/dashboards/{dashboard.key}",
            key=f"report-alert:{app}:{dashboard.key}:{alert.key}:{now.isoformat()}",
        )
    table = report_alert_states
    values = {"firing": firing, "value": value, "checked_at": now, "fired_at": fired_at}
    where = (table.c.app == app, table.c.dashboard == dashboard.key, table.c.alert == alert.key)
    if state is None:
        uow.conn.execute(
            table.insert().values(app=app, dashboard=dashboard.key, alert=alert.key, **values)
        )
    else:
        uow.conn.execute(table.update().where(*where).values(**values))


def job_handlers() -> Mapping[str, JobHandler]:
    """The worker's handlers from this engine (engine/jobs/providers.py)."""
    return {ALERT_JOB: evaluate_alerts}


__all__ = [
    "ALERT_JOB",
    "COMPARISONS",
    "evaluate_alerts",
    "job_handlers",
    "matching_rows",
    "recipients",
    "schedule_alerts",
    "schedule_app_alerts",
]
