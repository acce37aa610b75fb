"""Record actions across forms, notify and webhook actions, deleted/date/schedule triggers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import sqlalchemy as sa

from engine.flows.runtime_steps import Stepper
from tests.engine.flows.conftest import T0, FlowKit
from tests.engine.flows.test_runtime_time import run_jobs, start

Kit = Callable[[Mapping[str, str]], FlowKit]

CHILD_ORDER = """
key: child_order
label: Child order
form: ticket
trigger: {type: record_created, condition: priority >= 3}
nodes:
  - {key: start, type: start}
  - key: make
    type: action
    actions:
      - type: create_record
        form: work_order
        values: {title: 'CONCAT("Fix: ", subject)', ticket_id: id}
        link_field: work_order
      - type: notify
        to: [{type: user, value: ops}, {type: field, value: handler}]
        subject: 'Work order for {subject}'
        body: 'Priority {priority}'
      - type: webhook
        url: https://hooks.example.com/tickets
        payload: {source: tangram}
  - {key: end, type: end}
edges:
  - {from: start, to: make}
  - {from: make, to: end}
"""
CLOSE_ORDERS = """
key: close_orders
label: Close orders
form: ticket
trigger: {type: field_changed, fields: [status], condition: status = "closed"}
nodes:
  - {key: start, type: start}
  - key: close
    type: action
    actions:
      - type: update_record
        form: work_order
        where: ticket_id = $record.id
        values: {done: 'true'}
  - {key: end, type: end}
edges:
  - {from: start, to: close}
  - {from: close, to: end}
"""
ON_DELETE = """
key: purge_orders
label: Purge orders
form: ticket
trigger: {type: record_deleted}
nodes:
  - {key: start, type: start}
  - key: purge
    type: action
    actions: [{type: delete_record, form: work_order, where: ticket_id = $record.id}]
  - {key: end, type: end}
edges:
  - {from: start, to: purge}
  - {from: purge, to: end}
"""


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_create_update_and_delete_records_of_another_form(
    flow_kit: Kit, make_user: Callable[..., object]
) -> None:
    ops = make_user("ops")
    handler = make_user("handler")
    kit = flow_kit(
        {"child_order": CHILD_ORDER, "close_orders": CLOSE_ORDERS, "purge_orders": ON_DELETE}
    )
    record = kit.create(subject="pump", priority=4, handler=handler.id)  # type: ignore[attr-defined]
    linked = kit.get(record.id).values["work_order"]
    order = kit.get(linked, form="work_order")
    assert (order.values["title"], order.values["ticket_id"]) == ("Fix: pump", record.id)
    with kit.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT user_id, subject, body FROM outbox_notifications ORDER BY user_id")
        ).all()
    assert [tuple(r) for r in rows] == [
        (ops.id, "Work order for pump", "Priority 4"),  # type: ignore[attr-defined]
        (handler.id, "Work order for pump", "Priority 4"),  # type: ignore[attr-defined]
    ]
    with kit.engine.connect() as conn:
        payload = conn.execute(
            sa.text("SELECT payload FROM job_queue WHERE kind = 'outbox.webhook'")
        ).scalar_one()
    body = (
        payload["body"] if isinstance(payload, dict) else __import__("json").loads(payload)["body"]
    )
    assert body["source"] == "tangram" and body["record"]["subject"] == "pump"

    kit.update(record.id, status="closed")
    assert kit.get(linked, form="work_order").values["done"] is True
    with kit.unit() as uow:
        from engine.forms.record_writer import RecordWriter

        RecordWriter(uow, kit.env.kit, source="api", depth=0).delete(
            "fl", "ticket", record.id, actor=None
        )
        uow.commit()
    assert _count(kit.engine, "SELECT count(*) FROM fl__work_order WHERE deleted_at IS NULL") == 0
    flows = {i.flow: i.status for i in kit.instances()}
    assert flows == {
        "child_order": "completed",
        "close_orders": "completed",
        "purge_orders": "completed",
    }


DATED = """
key: follow_up
label: Follow up
form: ticket
trigger: {type: date_reached, date_field: due, offset: PT1H}
nodes:
  - {key: start, type: start}
  - key: nudge
    type: action
    actions: [{type: set_fields, values: {note: '"due passed"'}}]
  - {key: end, type: end}
edges:
  - {from: start, to: nudge}
  - {from: nudge, to: end}
"""


def test_date_reached_starts_at_the_date_plus_offset_and_follows_a_moved_date(
    flow_kit: Kit,
) -> None:
    kit = flow_kit({"follow_up": DATED})
    record = kit.create(subject="a", due=T0 + timedelta(days=1))
    kit.update(record.id, due=T0 + timedelta(days=2))
    run_jobs(kit.engine, T0 + timedelta(days=1, hours=2))
    assert kit.instances() == []
    run_jobs(kit.engine, T0 + timedelta(days=2, hours=1, seconds=1))
    [instance] = kit.instances()
    assert instance.status == "completed"
    assert kit.get(record.id).values["note"] == "due passed"


SCHEDULED = """
key: nightly
label: Nightly
trigger: {type: schedule, cron: "0 2 * * *"}
nodes:
  - {key: start, type: start}
  - {key: end, type: end}
edges:
  - {from: start, to: end}
"""


def test_schedule_starts_instances_and_queues_the_next_run(flow_kit: Kit) -> None:
    from engine.flows.service import FlowService
    from engine.storage.tables_jobs import job_queue

    kit = flow_kit({"nightly": SCHEDULED})
    with kit.engine.begin() as conn:  # the import queued the first run by the real clock
        assert (
            conn.execute(sa.delete(job_queue).where(job_queue.c.kind == "flow.schedule")).rowcount
            == 1
        )
    service = FlowService(db=kit.engine, env=kit.env, clock=lambda: T0)
    assert service.sync_schedules(app="fl") == 1
    assert service.sync_schedules(app="fl") == 0  # already queued
    run_jobs(kit.engine, T0 + timedelta(hours=18))  # 03:00 the next day
    assert [i.status for i in kit.instances()] == ["completed"]
    run_jobs(kit.engine, T0 + timedelta(hours=18, minutes=30))
    assert len(kit.instances()) == 1
    run_jobs(kit.engine, T0 + timedelta(days=1, hours=18))
    assert len(kit.instances()) == 2


def test_terminate_cancels_tasks_timers_and_children(flow_kit: Kit) -> None:
    from tests.engine.flows.test_runtime_time import CHILD, PARENT

    kit = flow_kit({"parent": PARENT, "child": CHILD})
    record = kit.create(subject="a")
    parent_id = start(kit, "parent", record.id)
    with kit.unit() as uow:
        Stepper(uow, now=T0).terminate(parent_id, reason="admin")
        uow.commit()
    [child] = kit.instances(flow="child")
    assert kit.instance(parent_id).status == "terminated"
    assert kit.instance(child.id).status == "terminated"
    run_jobs(kit.engine, T0 + timedelta(hours=2))  # the child's timer was cancelled
    assert kit.instance(child.id).status == "terminated"
    assert kit.get(record.id).values["note"] is None
