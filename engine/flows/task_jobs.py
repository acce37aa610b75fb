"""Task timeouts as jobs: remind, escalate, approve, reject or jump (`goto`) when a task waits too
long. Deadlines are in natural time, or in business time over a calendar definition.

The handler is idempotent: a task that is no longer open when its job runs is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from engine.errors import TransitionError
from engine.flows.assignees import AssignContext, resolve_rule
from engine.flows.spec import Timeout
from engine.flows.tasks import ResumeToken, finish_group, runtime_resume
from engine.flows.tasks_effects import TIMEOUT_JOB, notify_users
from engine.flows.tasks_ops import Locked, OpContext, decide_task, lock_task, transfer_task
from engine.flows.tasks_store import TaskGroup, log_action
from engine.jobs.types import JobContext, JobHandler
from engine.storage.definitions import DefinitionStore

if TYPE_CHECKING:
    from engine.storage.uow import UnitOfWork

NO_CALENDAR = "task.calendar-missing"
CALENDAR_KIND = "calendars"


def job_handlers() -> Mapping[str, JobHandler]:
    """The task service's job kinds, for the worker."""
    return {TIMEOUT_JOB: timeout_handler(runtime_resume)}


def timeout_handler(resume: ResumeToken) -> JobHandler:
    """The `task.timeout` handler, resuming tokens through `resume`."""

    def handle(job: JobContext) -> None:
        ctx = OpContext(uow=job.uow, actor_id=None, now=job.now, resume=resume)
        locked = lock_task(ctx, int(job.payload["task_id"]))
        if locked.task.status != "open" or locked.group.status != "open":
            return
        timeout = locked.group.node.timeout
        if timeout is not None:
            _ACTIONS[timeout.action](ctx, locked, timeout)

    return handle


def _remind(ctx: OpContext, locked: Locked, timeout: Timeout) -> None:
    assignee = locked.task.assignee_id
    if assignee is not None:
        notify_users(
            ctx.uow.conn,
            [assignee],
            subject=f"Reminder: {locked.group.node_key}",
            body=f"A task of flow {locked.group.flow} is waiting for you.",
            link=f"/tasks/{locked.task.id}",
        )
    _logged(ctx, locked, "reminded", {"to": assignee})
    if timeout.remind_every is not None:
        _schedule_again(ctx, locked)


def _escalate(ctx: OpContext, locked: Locked, timeout: Timeout) -> None:
    if timeout.escalate_to is None:
        _remind(ctx, locked, timeout)
        return
    assign = AssignContext(
        app=locked.group.app,
        scope=f"{locked.group.app}/{locked.group.flow}/{locked.group.node_key}/escalate",
        record=_record_values(ctx.uow, locked.group),
        initiator_id=locked.group.initiator_id,
        now=ctx.now,
    )
    found = [
        u
        for u in resolve_rule(ctx.uow.conn, timeout.escalate_to, assign).user_ids
        if u != locked.task.assignee_id
    ]
    if not found:
        _remind(ctx, locked, timeout)
        return
    transfer_task(ctx, locked, to_user=found[0], reason="timeout", action="escalated")


def _approve(ctx: OpContext, locked: Locked, timeout: Timeout) -> None:
    decide_task(ctx, locked, approve=True, detail={"reason": "timeout"})


def _reject(ctx: OpContext, locked: Locked, timeout: Timeout) -> None:
    decide_task(ctx, locked, approve=False, detail={"reason": "timeout"})


def _goto(ctx: OpContext, locked: Locked, timeout: Timeout) -> None:
    if timeout.goto is None:
        raise TransitionError("a goto timeout needs goto", code="task.bad-timeout")
    _logged(ctx, locked, "timed-out", {"goto": timeout.goto})
    finish_group(
        ctx.uow,
        locked.group,
        outcome="done",
        actor_id=None,
        now=ctx.now,
        resume=ctx.resume,
        goto=timeout.goto,
    )


_ACTIONS = {
    "remind": _remind,
    "escalate": _escalate,
    "approve": _approve,
    "reject": _reject,
    "goto": _goto,
}


def _schedule_again(ctx: OpContext, locked: Locked) -> None:
    # The running job still holds the task's key, so the next reminder gets a key of its own.
    from engine.jobs.queue import enqueue

    timeout = locked.group.node.timeout
    if timeout is None or timeout.remind_every is None:
        return
    due = due_after(ctx.uow.conn, timeout, ctx.now, timeout.remind_every, app=locked.group.app)
    key = f"task-timeout:{locked.task.id}:{due.isoformat()}"
    enqueue(
        ctx.uow.conn, kind=TIMEOUT_JOB, payload={"task_id": locked.task.id}, due_at=due, key=key
    )


def due_after(
    conn: sa.Connection, timeout: Timeout, now: datetime, every: str, *, app: str | None = None
) -> datetime:
    """`now` plus the ISO duration `every`, in business time when the timeout says so.

    Raises:
        TransitionError: `task.calendar-missing` for business time without an installed calendar.
    """
    from engine.flows.runtime import duration

    span = duration(every)
    if not timeout.business_time:
        return now + span
    if timeout.calendar is None or app is None:
        raise TransitionError("business time needs a calendar", code=NO_CALENDAR)
    return _add_business(conn, app, timeout.calendar, now, span)


def _add_business(
    conn: sa.Connection, app: str, key: str, now: datetime, span: timedelta
) -> datetime:
    from engine.errors import NotFoundError
    from engine.flows.calendar import BusinessCalendar, add_business
    from engine.flows.calendar_spec import CalendarSpec

    try:
        body = DefinitionStore(conn).get_current(app=app, kind=CALENDAR_KIND, key=key).body
    except NotFoundError as err:
        raise TransitionError(f"no calendar {key!r} in app {app!r}", code=NO_CALENDAR) from err
    calendar = BusinessCalendar(CalendarSpec.model_validate(body))
    return add_business(calendar, now, span.total_seconds())


def _record_values(uow: UnitOfWork, group: TaskGroup) -> dict[str, object]:
    if group.form is None or group.record_id is None:
        return {}
    from engine.forms.service import RecordService
    from engine.registry import DefinitionRegistry

    records = RecordService(db=uow.conn, registry=DefinitionRegistry())
    return dict(records.writer(uow).get(group.app, group.form, group.record_id).values)


def _logged(ctx: OpContext, locked: Locked, action: str, detail: Mapping[str, object]) -> None:
    log_action(
        ctx.uow.conn,
        instance_id=locked.task.instance_id,
        group_id=locked.group.id,
        task_id=locked.task.id,
        action=action,
        at=ctx.now,
        actor_id=None,
        detail={"node": locked.group.node_key, **detail},
    )


__all__ = ["NO_CALENDAR", "due_after", "job_handlers", "timeout_handler"]
