"""What opening and working tasks sets off besides the task rows: timeout jobs and
notifications (both in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from engine.flows.tasks_store import TaskGroup
from engine.storage.tables_assign import flow_tasks

TIMEOUT_JOB = "task.timeout"


def schedule_timeout(
    conn: sa.Connection, group: TaskGroup, task_id: int, *, now: datetime
) -> datetime | None:
    """Queue the task's timeout job, `after` from now (reminders queue themselves)."""
    timeout = group.node.timeout
    if timeout is None:
        return None
    from engine.flows.task_jobs import due_after
    from engine.jobs.queue import enqueue

    due = due_after(conn, timeout, now, timeout.after, app=group.app)
    enqueue(
        conn,
        kind=TIMEOUT_JOB,
        payload={"task_id": task_id},
        due_at=due,
        key=timeout_key(task_id),
    )
    conn.execute(flow_tasks.update().where(flow_tasks.c.id == task_id).values(due_at=due))
    return due


def timeout_key(task_id: int) -> str:
    return f"task-timeout:{task_id}"


def cancel_timeout(conn: sa.Connection, group: TaskGroup, task_id: int) -> None:
    """Cancel the task's queued timeout job (nodes without a timeout have none)."""
    if group.node.timeout is None:
        return
    from engine.jobs.queue import cancel

    cancel(conn, key=timeout_key(task_id))


def notify_assigned(
    conn: sa.Connection, user_ids: Iterable[int | None], group: TaskGroup, *, pool: bool
) -> None:
    recipients = [u for u in user_ids if u is not None]
    if not recipients:
        return
    what = "cc" if group.node.kind == "cc" else "pool" if pool else "task"
    subjects = {"cc": "For your information", "pool": "A task to claim", "task": "A new task"}
    notify_users(
        conn,
        recipients,
        subject=f"{subjects[what]}: {group.node_key}",
        body=_describe(group),
        link=f"/tasks?box={'mine' if what == 'task' else what}",
    )


def notify_users(
    conn: sa.Connection, user_ids: Iterable[int], *, subject: str, body: str, link: str | None
) -> None:
    from engine.outbox.notifications import notify

    notify(conn, user_ids=list(user_ids), subject=subject, body=body, link=link)


def _describe(group: TaskGroup) -> str:
    where = f" on {group.form} #{group.record_id}" if group.record_id is not None else ""
    return f"Flow {group.flow}, step {group.node_key}{where}."


__all__ = [
    "TIMEOUT_JOB",
    "cancel_timeout",
    "notify_assigned",
    "notify_users",
    "schedule_timeout",
    "timeout_key",
]
