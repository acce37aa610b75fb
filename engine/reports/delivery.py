"""Scheduled delivery (订阅推送): a dashboard's `deliveries` mailed to users on a schedule.

Each delivery is a job chain (kind `report.delivery`, key
`report-delivery:<app>:<dashboard>:<delivery>@<local run time>`, engine/reports/schedule.py).
A link queues one `report.delivery_mail` job per recipient and then its successor at the
schedule's next run, in one transaction, so a retried link queues nothing twice. The mail job
(engine/reports/delivery_mail.py) runs the widgets as its recipient and sends over SMTP; it
runs on its own, so a retry re-sends only that recipient's mail. An import starts the chain
of every delivery that has none queued; a delivery removed from its dashboard ends its chain.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.jobs.queue import enqueue
from engine.jobs.types import JobContext
from engine.reports.recipients import find_recipients
from engine.reports.schedule import JobChain, installed, installed_all, next_run
from engine.reports.spec import DashboardSpec, Delivery
from engine.storage.uow import UnitOfWork

DELIVERY_JOB = "report.delivery"
DELIVERY_MAIL_JOB = "report.delivery_mail"
DASHBOARD_KIND = "dashboards"
DELIVERY_NOT_FOUND = "report.delivery-not-found"


def _chain(app: str, dashboard: str, delivery: str) -> JobChain:
    return JobChain.of(DELIVERY_JOB, "report-delivery", app, dashboard, delivery)


def find_delivery(
    uow: UnitOfWork, *, app: str, dashboard: str, key: str
) -> tuple[DashboardSpec, Delivery] | None:
    """The installed dashboard and its delivery `key` (None when either is gone)."""
    spec = installed(uow, DashboardSpec, app=app, kind=DASHBOARD_KIND, key=dashboard)
    found = [d for d in spec.deliveries if d.key == key] if spec else []
    return (spec, found[0]) if spec and found else None


def schedule_delivery(
    conn: sa.Connection, *, app: str, dashboard: str, delivery: Delivery, after: datetime
) -> datetime:
    """Queue the delivery's first run strictly after `after` (kept if already queued)."""
    due = next_run(delivery.schedule, after)
    local = due.astimezone(ZoneInfo(delivery.schedule.timezone)).isoformat(timespec="minutes")
    payload = {"app": app, "dashboard": dashboard, "delivery": delivery.key, "at": due.isoformat()}
    _chain(app, dashboard, delivery.key).queue(conn, due_at=due, suffix=local, payload=payload)
    return due


def schedule_app_deliveries(uow: UnitOfWork, *, app: str, now: datetime) -> int:
    """Start the chain of every delivery of `app`'s dashboards that has none (after an import)."""
    started = 0
    for spec in installed_all(uow, DashboardSpec, app=app, kind=DASHBOARD_KIND):
        for delivery in spec.deliveries:
            if _chain(app, spec.key, delivery.key).is_running(uow.conn):
                continue
            schedule_delivery(uow.conn, app=app, dashboard=spec.key, delivery=delivery, after=now)
            started += 1
    return started


def queue_mails(
    uow: UnitOfWork, *, app: str, dashboard: str, delivery: Delivery, at: datetime, tag: str
) -> list[int]:
    """Queue one mail job per recipient for the run at `at`; the recipients' user ids.

    `tag` tells runs apart in the job keys, so queuing the same run again adds nothing.
    """
    user_ids = find_recipients(uow.conn, app=app, usernames=delivery.users, roles=delivery.roles)
    base = f"report-delivery-mail:{app}:{dashboard}:{delivery.key}@{tag}"
    for user_id in user_ids:
        payload = {"app": app, "dashboard": dashboard, "delivery": delivery.key,
                   "user_id": user_id, "at": at.isoformat()}  # fmt: skip
        enqueue(uow.conn, kind=DELIVERY_MAIL_JOB, payload=payload, due_at=at,
                key=f"{base}:{user_id}")  # fmt: skip
    return user_ids


def run_delivery(ctx: JobContext) -> None:
    """The `report.delivery` handler: queue this run's mails, then the next run."""
    app, dashboard = str(ctx.payload["app"]), str(ctx.payload["dashboard"])
    found = find_delivery(ctx.uow, app=app, dashboard=dashboard, key=str(ctx.payload["delivery"]))
    if found is None:
        return  # the dashboard or the delivery was removed: the chain ends
    _spec, delivery = found
    at = datetime.fromisoformat(str(ctx.payload["at"]))
    queue_mails(ctx.uow, app=app, dashboard=dashboard, delivery=delivery, at=at,
                tag=at.isoformat(timespec="minutes"))  # fmt: skip
    schedule_delivery(ctx.uow.conn, app=app, dashboard=dashboard, delivery=delivery,
                      after=max(ctx.now, at))  # fmt: skip


def send_now(uow: UnitOfWork, *, app: str, dashboard: str, key: str, now: datetime) -> list[int]:
    """Queue the delivery's mails for now (the schedule is unchanged); the recipients.

    Raises:
        NotFoundError: `report.delivery-not-found`.
    """
    found = find_delivery(uow, app=app, dashboard=dashboard, key=key)
    if found is None:
        raise NotFoundError(
            f"dashboard {app}.{dashboard} has no delivery {key!r}", code=DELIVERY_NOT_FOUND
        )
    tag = "now-" + now.isoformat(timespec="microseconds")
    return queue_mails(uow, app=app, dashboard=dashboard, delivery=found[1], at=now, tag=tag)


__all__ = [
    "DELIVERY_JOB",
    "DELIVERY_MAIL_JOB",
    "DELIVERY_NOT_FOUND",
    "find_delivery",
    "queue_mails",
    "run_delivery",
    "schedule_app_deliveries",
    "schedule_delivery",
    "send_now",
]
