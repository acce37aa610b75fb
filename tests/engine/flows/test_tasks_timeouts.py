"""Task timeouts run by the real job worker: remind (and again), escalate, approve, reject,
goto; business time over a calendar; a job for a task done meanwhile does nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.flows.task_jobs import job_handlers
from engine.jobs.worker import Worker
from engine.storage.tables_jobs import job_queue, outbox_notifications
from tests.engine.flows.conftest import T0
from tests.engine.flows.test_tasks_kit import TaskKit, flow, task_kit

__all__ = ["task_kit"]  # the fixture, imported for pytest

Kit = Callable[..., TaskKit]
ANN = "[{type: user, value: ann}]"


def _timeout(text: str) -> str:
    return f"    timeout: {text}"


def _run_worker(kit: TaskKit, at: datetime) -> int:
    return Worker(kit.engine, handlers=job_handlers(), clock=lambda: at).drain()


def _notified(kit: TaskKit, name: str) -> list[str]:
    query = (
        sa.select(outbox_notifications.c.subject)
        .where(outbox_notifications.c.user_id == kit.users[name])
        .order_by(outbox_notifications.c.id)
    )
    with kit.unit() as uow:
        return list(uow.conn.execute(query).scalars())


def test_remind_repeats_until_the_task_is_done(task_kit: Kit) -> None:
    kit = task_kit(
        {"review": flow(assignees=ANN, extra=_timeout("{after: PT1H, remind_every: PT30M}"))}
    )
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    assert task.due_at == T0 + timedelta(hours=1)
    assert _run_worker(kit, T0 + timedelta(minutes=59)) == 0
    assert _run_worker(kit, T0 + timedelta(minutes=61)) == 1
    assert _run_worker(kit, T0 + timedelta(minutes=92)) == 1
    assert _notified(kit, "ann") == ["A new task: check", "Reminder: check", "Reminder: check"]
    kit.service.approve(task_id=task.id, actor=kit.actor("ann"))
    assert _run_worker(kit, T0 + timedelta(hours=5)) == 1  # the queued reminder: a no-op
    assert _notified(kit, "ann")[-1] == "Reminder: check"
    assert len(_notified(kit, "ann")) == 3
    assert kit.actions(task.id) == ["opened", "reminded", "reminded", "approved"]


def test_completing_a_task_cancels_its_timeout(task_kit: Kit) -> None:
    kit = task_kit(
        {"review": flow(assignees=ANN, extra=_timeout("{after: PT1H, action: approve}"))}
    )
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    kit.service.reject(task_id=task.id, actor=kit.actor("ann"))
    with kit.unit() as uow:
        statuses = uow.conn.execute(
            sa.select(job_queue.c.status).where(job_queue.c.key == f"task-timeout:{task.id}")
        ).scalars()
        assert list(statuses) == ["cancelled"]
    assert _run_worker(kit, T0 + timedelta(hours=2)) == 0


@pytest.mark.parametrize(("action", "end"), [("approve", "handle"), ("reject", "rejected")])
def test_auto_approve_or_reject(task_kit: Kit, action: str, end: str) -> None:
    kit = task_kit(
        {"review": flow(assignees=ANN, extra=_timeout(f"{{after: PT1H, action: {action}}}"))}
    )
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    _run_worker(kit, T0 + timedelta(hours=2))
    done = kit.task(task.id)
    assert (done.status, done.completed_by) == ("done", None)
    assert kit.path()[-1] == end


def test_escalate_hands_the_task_to_the_escalation_rule(task_kit: Kit) -> None:
    timeout = "{after: PT1H, action: escalate, escalate_to: {type: user, value: dan}}"
    kit = task_kit({"review": flow(assignees=ANN, extra=_timeout(timeout))})
    kit.create(subject="printer")
    task = kit.open_task("check", "ann")
    _run_worker(kit, T0 + timedelta(hours=2))
    assert kit.task(task.id).assignee_id == kit.users["dan"]
    assert kit.actions(task.id)[-1] == "escalated"
    assert _notified(kit, "dan") == ["A task handed to you: check"]


def test_goto_jumps_to_the_named_node(task_kit: Kit) -> None:
    kit = task_kit(
        {
            "review": flow(
                assignees=ANN, extra=_timeout("{after: PT1H, action: goto, goto: rejected}")
            )
        }
    )
    kit.create(subject="printer")
    _run_worker(kit, T0 + timedelta(hours=2))
    assert kit.path()[-1] == "rejected"
    assert kit.who(kit.tasks(node="check")) == [("ann", "cancelled")]


CALENDAR = """
key: office
label: Office
timezone: UTC
weekly_hours:
  - {weekday: 1, start: '09:00', end: '18:00'}
  - {weekday: 2, start: '09:00', end: '18:00'}
"""


def test_business_time_deadline_skips_closed_hours(task_kit: Kit) -> None:
    timeout = "{after: PT10H, business_time: true, calendar: office}"
    kit = task_kit(
        {"review": flow(assignees=ANN, extra=_timeout(timeout))},
        files={"calendars/office.yaml": CALENDAR},
    )
    kit.create(subject="printer")  # Monday 09:00 UTC: 9 h on Monday, 1 h on Tuesday
    assert kit.open_task("check", "ann").due_at == T0 + timedelta(days=1, hours=1)


POOL = "[{type: pool, value: 'department:desk'}]"


def _pool(task_kit: Kit) -> TaskKit:
    timeout = "{after: PT30M, action: escalate, escalate_to: {type: user, value: dan}}"
    kit = task_kit({"review": flow(assignees=POOL, extra=_timeout(timeout))})
    with kit.unit() as uow:
        desk = uow.departments.create(key="desk", name="Desk")
        for name in ("ann", "bob"):
            uow.departments.add_member(department_id=desk.id, user_id=kit.users[name])
        uow.commit()
    kit.create(subject="printer")
    return kit


def test_an_unclaimed_pool_task_escalates_after_its_timeout(task_kit: Kit) -> None:
    kit = _pool(task_kit)
    [task] = kit.tasks(node="check")
    _run_worker(kit, T0 + timedelta(minutes=20))
    assert kit.task(task.id).assignee_id is None  # not due yet
    _run_worker(kit, T0 + timedelta(minutes=40))
    assert kit.task(task.id).assignee_id == kit.users["dan"]
    assert kit.actions(task.id) == ["opened", "escalated"]


def test_claiming_a_pool_task_cancels_its_timeout(task_kit: Kit) -> None:
    kit = _pool(task_kit)
    [task] = kit.tasks(node="check")
    kit.service.claim(task_id=task.id, actor=kit.actor("bob"))
    _run_worker(kit, T0 + timedelta(hours=2))
    assert kit.task(task.id).assignee_id == kit.users["bob"]
    assert kit.actions(task.id) == ["opened", "claimed"]
