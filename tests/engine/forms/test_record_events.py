"""Record change events: every write path fires one RecordChange per record, in its transaction."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, PermissionDenied
from engine.forms.events import MAX_CHANGE_DEPTH, RecordChange
from engine.forms.record_writer import CHANGE_LOOP, ChangeLoopError
from engine.forms.service import RecordService
from engine.forms.transfer_service import ImportOptions, TransferService
from engine.identity.actor import Actor
from engine.registry import DefinitionRegistry
from engine.storage.uow import UnitOfWork


class Recorder:
    """A listener that keeps what it is told (and can be told to fail or to write)."""

    def __init__(self) -> None:
        self.changes: list[RecordChange] = []
        self.then: Callable[[UnitOfWork, RecordChange], None] | None = None

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None:
        self.changes.append(change)
        if self.then is not None:
            self.then(uow, change)

    def seen(self) -> list[tuple[str, str, int, str, int]]:
        return [(c.form, c.kind, c.record_id, c.source, c.depth) for c in self.changes]

    def clear(self) -> None:
        self.changes.clear()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def user(make_user: Callable[..., Any]) -> int:
    return int(make_user("ed").id)


@pytest.fixture
def service(records_app: str, migrated_engine: sa.Engine, recorder: Recorder) -> RecordService:
    return RecordService(db=migrated_engine, registry=DefinitionRegistry(), listeners=[recorder])


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _ticket(service: RecordService, actor: int | None = None, **data: Any) -> int:
    data = {"subject": "S", **data}
    result = service.create(app="rec", form="ticket", data=data, actor=actor)
    return result.record.id


def test_create_update_delete_restore_fire_one_event_each(
    service: RecordService, recorder: Recorder, user: int
) -> None:
    rid = _ticket(service, user, hours=2)
    [created] = recorder.changes
    assert (created.kind, created.before, created.source, created.depth) == (
        "created",
        None,
        "api",
        0,
    )
    assert created.actor_id == user and created.after.id == rid
    assert {"subject", "hours", "status", "number"} <= created.changed
    assert created.value("subject") == "S"
    recorder.clear()

    service.update(
        app="rec", form="ticket", record_id=rid, data={"hours": 3}, version=1, actor=user
    )
    [updated] = recorder.changes
    assert updated.kind == "updated" and updated.changed == frozenset({"hours"})
    assert updated.before is not None and updated.before.values["hours"] == 2
    assert updated.after.values["hours"] == 3 and updated.after.version == 2
    recorder.clear()

    service.update(
        app="rec", form="ticket", record_id=rid, data={"hours": 3}, version=2, actor=user
    )
    assert recorder.changes == []  # nothing changed, nothing written, nothing told

    service.delete(app="rec", form="ticket", record_id=rid, actor=user)
    service.restore(app="rec", form="ticket", record_id=rid, actor=user)
    assert [c.kind for c in recorder.changes] == ["deleted", "restored"]
    deleted, restored = recorder.changes
    assert deleted.before is not None and deleted.before.deleted_at is None
    assert deleted.after.deleted_at is not None and deleted.changed == frozenset()
    assert restored.after.deleted_at is None and restored.after.version == 4


def test_bulk_update_and_delete_fire_per_record(service: RecordService, recorder: Recorder) -> None:
    ids = [_ticket(service), _ticket(service)]
    recorder.clear()
    report = service.bulk_update(app="rec", form="ticket", ids=ids, data={"hours": 5}, actor=None)
    assert report.applied
    assert recorder.seen() == [("ticket", "updated", i, "bulk", 0) for i in ids]
    recorder.clear()
    assert service.bulk_delete(app="rec", form="ticket", ids=ids, actor=None).applied
    assert recorder.seen() == [("ticket", "deleted", i, "bulk", 0) for i in ids]


def test_a_failing_listener_rolls_the_write_back(
    service: RecordService, recorder: Recorder, migrated_engine: sa.Engine
) -> None:
    rid = _ticket(service, hours=1)

    def refuse(_uow: UnitOfWork, _change: RecordChange) -> None:
        raise ConflictError("listener says no")

    recorder.then = refuse
    with pytest.raises(ConflictError):
        _ticket(service)
    with pytest.raises(ConflictError):
        service.update(
            app="rec", form="ticket", record_id=rid, data={"hours": 9}, version=1, actor=None
        )
    recorder.then = None
    assert _count(migrated_engine, "rec__ticket") == 1
    assert service.get(app="rec", form="ticket", record_id=rid).record.values["hours"] == 1
    assert len(service.history(app="rec", form="ticket", record_id=rid)) == 1


def test_import_fires_created_per_record(
    records_app: str, migrated_engine: sa.Engine, recorder: Recorder, tmp_path: Path, user: int
) -> None:
    transfer = TransferService(
        db=migrated_engine,
        registry=DefinitionRegistry(),
        data_dir=tmp_path,
        batch_size=2,
        listeners=[recorder],
    )
    upload = io.BytesIO(b"name\nAcme\nBeta\nGamma\n")
    job = transfer.import_file(
        app="rec",
        form="customer",
        upload=upload,
        file_name="c.csv",
        options=ImportOptions(),
        actor=user,
    )
    assert job.rows_written == 3
    assert [(c.kind, c.source, c.actor_id) for c in recorder.changes] == [
        ("created", "import", user)
    ] * 3
    assert [c.value("name") for c in recorder.changes] == ["Acme", "Beta", "Gamma"]


def test_writer_writes_in_the_callers_transaction(
    service: RecordService, recorder: Recorder, migrated_engine: sa.Engine
) -> None:
    with UnitOfWork(migrated_engine) as uow:
        writer = service.writer(uow)
        tag = writer.create("rec", "tag", {"label": "vip"}, actor=None)
        ticket = writer.create("rec", "ticket", {"subject": "x", "owner_tag": tag.id}, actor=None)
        again = writer.update("rec", "ticket", ticket.id, {"hours": 4}, actor=None)
        assert again.version == 2 and writer.get("rec", "ticket", ticket.id).values["hours"] == 4
        writer.delete("rec", "ticket", ticket.id, actor=None)
        assert [(c.form, c.kind, c.source, c.depth) for c in recorder.changes] == [
            ("tag", "created", "flow", 1),
            ("ticket", "created", "flow", 1),
            ("ticket", "updated", "flow", 1),
            ("ticket", "deleted", "flow", 1),
        ]
        # not committed: nothing is left
    assert _count(migrated_engine, "rec__ticket") == 0
    with UnitOfWork(migrated_engine) as uow:
        kept = service.writer(uow, source="system", depth=0).create(
            "rec", "tag", {"label": "kept"}, actor=None
        )
        uow.commit()
    assert _count(migrated_engine, "rec__tag") == 1
    history = service.history(app="rec", form="tag", record_id=kept.id)
    assert [e.action for e in history] == ["create"]


def test_writer_applies_permissions_to_a_real_actor(
    service: RecordService, migrated_engine: sa.Engine
) -> None:
    nobody = Actor(user_id=99, username="nobody")
    with UnitOfWork(migrated_engine) as uow, pytest.raises(PermissionDenied):
        service.writer(uow).create("rec", "tag", {"label": "x"}, actor=nobody)


def test_listener_caused_writes_stop_at_the_loop_guard(
    service: RecordService, recorder: Recorder, migrated_engine: sa.Engine
) -> None:
    def bump(uow: UnitOfWork, change: RecordChange) -> None:
        # A "flow" that updates the record whose change it hears: it never settles.
        hours = (change.value("hours") or 0) + 1
        writer = service.writer(uow, depth=change.depth + 1)
        writer.update(change.app, change.form, change.record_id, {"hours": hours}, actor=None)

    recorder.then = bump
    with pytest.raises(ChangeLoopError) as caught:
        _ticket(service)
    assert caught.value.code == CHANGE_LOOP
    assert max(c.depth for c in recorder.changes) == MAX_CHANGE_DEPTH
    assert _count(migrated_engine, "rec__ticket") == 0  # the whole transaction rolled back
    with UnitOfWork(migrated_engine) as uow, pytest.raises(ChangeLoopError):
        service.writer(uow, depth=MAX_CHANGE_DEPTH + 1).create(
            "rec", "tag", {"label": "x"}, actor=None
        )
