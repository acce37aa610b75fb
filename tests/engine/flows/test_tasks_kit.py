"""The task tests' kit: app "fl" (the flow tests' forms) with the given flows, the real flow
runtime and task service, users ann…fay, and helpers to read tasks and act on them.

Other test_tasks* modules import `task_kit` and `TaskKit` from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.flows.runtime_env import FlowEnvironment, use_environment
from engine.flows.tasks import ResumeToken, runtime_resume
from engine.flows.tasks_service import TaskService
from engine.flows.tasks_store import Task, get_task
from engine.forms.record_writer import RecordWriter
from engine.forms.service import RecordService
from engine.identity.actor import Actor
from engine.identity.service import load_actor
from engine.storage.form_records import StoredRecord
from engine.storage.tables_assign import flow_task_actions, flow_tasks
from engine.storage.uow import UnitOfWork
from tests.engine.flows.conftest import T0, write_bundle

USERS = ("ann", "bob", "cid", "dan", "eve", "fay")


@dataclass
class TaskKit:
    engine: sa.Engine
    env: FlowEnvironment
    service: TaskService
    users: dict[str, int]
    app: str = "fl"

    def unit(self, at: datetime = T0) -> UnitOfWork:
        return UnitOfWork(self.engine, clock=lambda: at)

    def actor(self, name: str) -> Actor:
        with self.unit() as uow:
            return load_actor(uow=uow, user_id=self.users[name])

    def create(self, by: str | None = "fay", **values: Any) -> StoredRecord:
        """A ticket created by `by` (the instance's initiator)."""
        with self.unit() as uow:
            writer = RecordWriter(uow, self.env.kit, source="api", depth=0)
            who = None if by is None else self.users[by]
            record = writer.create(self.app, "ticket", values, actor=who)
            uow.commit()
        return record

    def record(self, record_id: int) -> StoredRecord:
        with self.unit() as uow:
            return RecordWriter(uow, self.env.kit, source="api", depth=0).get(
                self.app, "ticket", record_id
            )

    def tasks(self, **where: Any) -> list[Task]:
        """Tasks in id order; `node=` filters on the node key, others on task columns."""
        from engine.storage.tables_assign import flow_task_groups

        query = sa.select(flow_tasks).join(
            flow_task_groups, flow_task_groups.c.id == flow_tasks.c.group_id
        )
        node = where.pop("node", None)
        if node is not None:
            query = query.where(flow_task_groups.c.node_key == node)
        for name, value in where.items():
            query = query.where(flow_tasks.c[name] == value)
        with self.unit() as uow:
            rows = uow.conn.execute(query.order_by(flow_tasks.c.id))
            return [Task(**row._mapping) for row in rows]

    def task(self, task_id: int) -> Task:
        with self.unit() as uow:
            return get_task(uow.conn, task_id)

    def open_task(self, node: str, user: str) -> Task:
        [found] = self.tasks(node=node, assignee_id=self.users[user], status="open")
        return found

    def who(self, tasks: list[Task]) -> list[tuple[str, str]]:
        names = {v: k for k, v in self.users.items()}
        return [(names.get(t.assignee_id or 0, "-"), t.status) for t in tasks]

    def actions(self, task_id: int) -> list[str]:
        query = sa.select(flow_task_actions.c.action).where(flow_task_actions.c.task_id == task_id)
        with self.unit() as uow:
            return list(uow.conn.execute(query.order_by(flow_task_actions.c.id)).scalars())

    def instance_status(self) -> list[str]:
        from engine.flows.instances import FlowStore

        with self.unit() as uow:
            return [i.status for i in FlowStore(uow.conn).instances(app=self.app)]

    def path(self) -> list[str]:
        from engine.flows.instances import FlowStore

        with self.unit() as uow:
            store = FlowStore(uow.conn)
            [instance] = store.instances(app=self.app)
            history = store.history([instance.id])
        return [h.node for h in history if h.event == "entered" and h.node]


@pytest.fixture
def task_kit(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Iterator[Callable[..., TaskKit]]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    def make(
        flows: Mapping[str, str],
        *,
        resume: ResumeToken = runtime_resume,
        files: Mapping[str, str] | None = None,
    ) -> TaskKit:
        folder = write_bundle(tmp_path / "fl_bundle", flows)
        for name, text in (files or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text.lstrip(), encoding="utf-8")
        import_bundle(db=migrated_engine, bundle=load_bundle(folder))
        users: dict[str, int] = {}
        with uow_factory() as uow:
            for name in USERS:
                users[name] = uow.users.create(username=name, display_name=name.title()).id
            uow.commit()
        env = FlowEnvironment()
        use_environment(env)
        records = RecordService(db=migrated_engine, registry=env.registry, listeners=env.listeners)
        service = TaskService(db=migrated_engine, records=records, clock=lambda: T0, resume=resume)
        return TaskKit(engine=migrated_engine, env=env, service=service, users=users)

    yield make
    use_environment(None)


CHECK_EDGES = """  - {from: check, to: handle, outcome: approved}
  - {from: check, to: handle, outcome: done}
  - {from: check, to: rejected, outcome: rejected}"""


PLAIN_EDGES = """  - {from: check, to: handle}
  - {from: start, to: rejected, condition: "1 = 2"}"""


def flow(
    *,
    assignees: str,
    mode: str = "any",
    kind: str = "approve",
    extra: str = "",
    handle: str = "[{type: user, value: eve}]",
    guarded: bool = True,
) -> str:
    """A ticket flow: start → check (the node under test) → handle → done; a rejection ends at
    `rejected` (`guarded` False: one plain edge check → handle)."""
    return f"""
key: review
label: Review
form: ticket
trigger: {{type: record_created}}
nodes:
  - {{key: start, type: start}}
  - key: check
    type: user_task
    kind: {kind}
    mode: {mode}
    assignees: {assignees}
{extra}
  - key: handle
    type: user_task
    kind: handle
    assignees: {handle}
  - {{key: done, type: end}}
  - {{key: rejected, type: end}}
edges:
  - {{from: start, to: check}}
{CHECK_EDGES if guarded else PLAIN_EDGES}
  - {{from: handle, to: done}}
"""


def test_kit_opens_the_first_node_for_a_new_ticket(task_kit: Callable[..., TaskKit]) -> None:
    kit = task_kit({"review": flow(assignees="[{type: user, value: 'ann,bob'}]")})
    kit.create(subject="printer")
    assert kit.who(kit.tasks(node="check")) == [("ann", "open"), ("bob", "open")]
    assert kit.instance_status() == ["running"]
