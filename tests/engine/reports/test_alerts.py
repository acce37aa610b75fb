"""Threshold alerts evaluated as worker jobs: notify once when a condition starts holding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.forms.service import RecordService
from engine.jobs.types import JobContext
from engine.registry import DefinitionRegistry
from engine.reports.alerts import ALERT_JOB, evaluate_alerts, job_handlers, schedule_app_alerts
from engine.storage.tables_jobs import job_queue, outbox_notifications
from engine.storage.tables_reports import report_alert_states
from engine.storage.uow import UnitOfWork

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)

BUNDLE = {
    "bundle.yaml": "key: alr\nname: Alerts test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true}
  - {key: region, type: text}
""",
    "roles/lead.yaml": """
key: lead
label: Lead
permissions:
  - {form: ticket, actions: [read], scope: all}
""",
    "reports/by_region.yaml": """
key: by_region
label: By region
dataset: {form: ticket}
dimensions: [{key: region, field: region}]
measures: [{key: tickets, aggregate: count}]
""",
    "dashboards/ops.yaml": """
key: ops
label: Ops
widgets:
  - {key: regions, report: by_region, x: 0, y: 0, w: 12, h: 6}
alerts:
  - {key: busy, label: Busy region, report: by_region, measure: tickets, op: gte,
     threshold: 2, every_minutes: 30, users: [alice], roles: [lead]}
""",
}


@pytest.fixture
def app(
    migrated_engine: sa.Engine,
    uow_factory: Callable[[], UnitOfWork],
    make_user: Callable[..., Any],
    tmp_path: Path,
) -> RecordService:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = tmp_path / "alr"
    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    make_user("alice")
    make_user("bob", roles=("alr.lead",))
    make_user("carol")
    records = RecordService(db=migrated_engine, registry=DefinitionRegistry())
    records.create(app="alr", form="ticket", data={"subject": "s", "region": "east"}, actor=None)
    return records


def run_job(engine: sa.Engine, at: datetime) -> None:
    with UnitOfWork(engine) as uow:
        ctx = JobContext(uow=uow, job_id=1, kind=ALERT_JOB, payload={"app": "alr",
                         "dashboard": "ops"}, attempt=1, now=at, worker="test")  # fmt: skip
        evaluate_alerts(ctx)
        uow.commit()


def notified(engine: sa.Engine) -> list[tuple[str, str]]:
    from engine.storage.tables import users

    query = (
        sa.select(users.c.username, outbox_notifications.c.subject)
        .join(users, users.c.id == outbox_notifications.c.user_id)
        .order_by(users.c.username, outbox_notifications.c.id)
    )
    with engine.connect() as conn:
        return [(str(u), str(s)) for u, s in conn.execute(query)]


def queued(engine: sa.Engine) -> list[datetime]:
    query = (
        sa.select(job_queue.c.due_at)
        .where(job_queue.c.kind == ALERT_JOB, job_queue.c.status == "queued")
        .order_by(job_queue.c.due_at)
    )
    with engine.connect() as conn:
        return [d.astimezone(UTC) for d in conn.execute(query).scalars()]


def test_handler_is_provided() -> None:
    assert job_handlers()[ALERT_JOB] is evaluate_alerts


def test_alert_fires_once_and_reschedules(app: RecordService, migrated_engine: sa.Engine) -> None:
    from engine.storage.tables_jobs import job_queue

    with migrated_engine.begin() as conn:  # the import started the chain by the real clock
        assert conn.execute(sa.delete(job_queue).where(job_queue.c.kind == ALERT_JOB)).rowcount == 1
    with UnitOfWork(migrated_engine) as uow:
        assert schedule_app_alerts(uow, app="alr", now=NOW) == 1
        uow.commit()
    assert queued(migrated_engine) == [NOW]

    run_job(migrated_engine, NOW)  # one east ticket: below the threshold
    assert notified(migrated_engine) == []
    assert NOW + timedelta(minutes=30) in queued(migrated_engine)

    app.create(app="alr", form="ticket", data={"subject": "t", "region": "east"}, actor=None)
    run_job(migrated_engine, NOW + timedelta(minutes=5))  # not due yet: nothing happens
    assert notified(migrated_engine) == []

    run_job(migrated_engine, NOW + timedelta(minutes=30))
    assert notified(migrated_engine) == [("alice", "Alert: Busy region"),
                                         ("bob", "Alert: Busy region")]  # fmt: skip
    run_job(migrated_engine, NOW + timedelta(minutes=60))  # still holding: no second notice
    assert len(notified(migrated_engine)) == 2
    with migrated_engine.connect() as conn:
        state = conn.execute(sa.select(report_alert_states)).one()
    assert state.firing is True and state.value == 2
