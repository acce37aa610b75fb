"""Fixtures of the flow runtime tests: a small app installed from text, a flow environment with
a recording task port, and helpers to write records and read flow state.

`flow_kit(flows)` imports app "fl" (forms ticket and work_order, plus the given flow files)
and returns a `FlowKit`; the process's flow environment is reset afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.flows.instances import FlowStore, HistoryRow, InstanceRow, TokenRow
from engine.flows.refs import InstanceRef, TaskOpening
from engine.flows.runtime_env import FlowEnvironment, use_environment
from engine.flows.spec import UserTaskNode
from engine.storage.form_records import StoredRecord
from engine.storage.uow import UnitOfWork

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

BUNDLE = {
    "bundle.yaml": """
key: fl
name: Flow test
version: 1.0.0
engine: ">=0.1,<1.0"
""",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, label: Subject, required: true, max_length: 200}
  - key: status
    type: select
    options:
      - {key: new, label: New}
      - {key: open, label: Open}
      - {key: waiting, label: Waiting}
      - {key: resolved, label: Resolved}
      - {key: closed, label: Closed}
    default: new
  - {key: priority, type: number, decimals: 0}
  - {key: note, type: text}
  - {key: due, type: datetime}
  - {key: handler, type: user}
  - {key: work_order, type: relation, form: work_order}
""",
    "calendars/office.yaml": """
key: office
label: Office
timezone: UTC
weekly_hours:
  - {weekday: 1, start: '09:00', end: '17:00'}
  - {weekday: 2, start: '09:00', end: '17:00'}
  - {weekday: 3, start: '09:00', end: '17:00'}
  - {weekday: 4, start: '09:00', end: '17:00'}
  - {weekday: 5, start: '09:00', end: '17:00'}
""",
    "forms/work_order.yaml": """
key: work_order
label: Work order
fields:
  - {key: title, type: text, required: true}
  - {key: ticket_id, type: number, decimals: 0}
  - {key: done, type: boolean}
""",
}


@dataclass
class RecordingTasks:
    """A task port that opens one fake task per user-task node and remembers the tokens."""

    opened: list[tuple[int, str]] = field(default_factory=list)
    cancelled: list[tuple[int, str]] = field(default_factory=list)
    skip_nodes: set[str] = field(default_factory=set)

    def open_node_tasks(
        self,
        uow: UnitOfWork,
        *,
        instance: InstanceRef,
        token_id: int,
        node: UserTaskNode,
        record: StoredRecord | None,
        now: datetime,
    ) -> TaskOpening:
        if node.key in self.skip_nodes:
            return TaskOpening(task_ids=(), skipped=True)
        self.opened.append((token_id, node.key))
        return TaskOpening(task_ids=(len(self.opened),))

    def cancel_node_tasks(self, uow: UnitOfWork, *, token_id: int, reason: str) -> None:
        self.cancelled.append((token_id, reason))

    def token_at(self, node: str) -> int:
        return next(t for t, n in reversed(self.opened) if n == node)


@dataclass
class FlowKit:
    engine: sa.Engine
    env: FlowEnvironment
    tasks: RecordingTasks
    app: str = "fl"

    def unit(self, at: datetime = T0) -> UnitOfWork:
        return UnitOfWork(self.engine, clock=lambda: at)

    def create(self, form: str = "ticket", at: datetime = T0, **values: Any) -> StoredRecord:
        from engine.forms.record_writer import RecordWriter

        with self.unit(at) as uow:
            writer = RecordWriter(uow, self.env.kit, source="api", depth=0)
            record = writer.create(self.app, form, values, actor=None)
            uow.commit()
        return record

    def update(self, record_id: int, at: datetime = T0, **values: Any) -> StoredRecord:
        from engine.forms.record_writer import RecordWriter

        with self.unit(at) as uow:
            writer = RecordWriter(uow, self.env.kit, source="api", depth=0)
            record = writer.update(self.app, "ticket", record_id, values, actor=None)
            uow.commit()
        return record

    def get(self, record_id: int, form: str = "ticket") -> StoredRecord:
        from engine.forms.record_writer import RecordWriter

        with self.unit() as uow:
            return RecordWriter(uow, self.env.kit, source="api", depth=0).get(
                self.app, form, record_id
            )

    def instances(self, **where: Any) -> list[InstanceRow]:
        with self.unit() as uow:
            return FlowStore(uow.conn).instances(app=self.app, **where)

    def instance(self, instance_id: int) -> InstanceRow:
        with self.unit() as uow:
            return FlowStore(uow.conn).instance(instance_id)

    def tokens(self, instance_id: int) -> list[TokenRow]:
        with self.unit() as uow:
            return FlowStore(uow.conn).tokens(instance_id)

    def history(self, instance_id: int) -> list[HistoryRow]:
        with self.unit() as uow:
            return FlowStore(uow.conn).history([instance_id])

    def path(self, instance_id: int) -> list[str]:
        return [h.node for h in self.history(instance_id) if h.event == "entered" and h.node]

    def live(self, instance_id: int) -> dict[str, str]:
        return {
            t.node: t.status for t in self.tokens(instance_id) if t.status in ("active", "waiting")
        }


def write_bundle(folder: Path, flows: Mapping[str, str]) -> Path:
    files = dict(BUNDLE)
    files.update({f"flows/{name}.yaml": text for name, text in flows.items()})
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
def flow_kit(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Iterator[Callable[[Mapping[str, str]], FlowKit]]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    def make(flows: Mapping[str, str]) -> FlowKit:
        folder = write_bundle(tmp_path / "fl_bundle", flows)
        import_bundle(db=migrated_engine, bundle=load_bundle(folder))
        tasks = RecordingTasks()
        env = FlowEnvironment(tasks=tasks)
        use_environment(env)
        return FlowKit(engine=migrated_engine, env=env, tasks=tasks)

    yield make
    use_environment(None)
