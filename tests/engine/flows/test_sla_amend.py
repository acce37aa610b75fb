"""The SLA listener amends the write that fires it: one INSERT or UPDATE, one history entry and
one change event carry the SLA fields (SQLite, and PostgreSQL with TANGRAM_TEST_DATABASE_URL).
Changes nobody amended (imports fire them) still get their SLA fields, by a write of their own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.forms.events import ChangeListener, RecordChange, changed_keys
from engine.forms.service import RecordService
from engine.installer import import_bundle
from engine.registry import DefinitionRegistry
from engine.storage.record_meta import RecordMetaStore
from engine.storage.uow import UnitOfWork
from tests.engine.flows.test_sla_service import BUNDLE, Clock, Kit, sh

SLA_FIELDS = {"sla_policy", "sla_start", "response_by", "response_state", "resolution_by"}


class Recorder:
    """A plain listener after the SLA one: the change events a write fires."""

    def __init__(self) -> None:
        self.changes: list[RecordChange] = []

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None:
        if change.form == "ticket":
            self.changes.append(change)


@pytest.fixture
def kit(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Kit:  # uow_factory: the committed data is wiped after each test
    for name, text in BUNDLE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(tmp_path))
    return Kit(migrated_engine, Clock(sh(3, 9)))


@pytest.fixture
def recorder(kit: Kit) -> Recorder:
    recorder = Recorder()
    cast(list[ChangeListener], kit.records._kit.listeners).append(recorder)
    return recorder


def history(kit: Kit, record_id: int) -> list[tuple[int, str, set[str]]]:
    with kit.engine.connect() as conn:
        meta = RecordMetaStore(conn, app="slat", form="ticket")
        entries = meta.list_history(record_id=record_id)
    return [(e.version, e.action, set(e.changes)) for e in entries]


def test_a_create_stores_its_sla_fields_in_its_own_insert(kit: Kit, recorder: Recorder) -> None:
    created = kit.records.create(app="slat", form="ticket", data={"subject": "A"}, actor=None)
    record = created.record
    assert record.version == 1  # no second write
    assert record.values["response_by"] == sh(3, 11)  # the returned record has them already
    assert record.values["response_state"] == "running"
    [(version, action, changed)] = history(kit, record.id)
    assert (version, action) == (1, "create") and SLA_FIELDS <= changed
    [change] = recorder.changes
    assert change.kind == "created" and change.amended and change.depth == 0
    assert SLA_FIELDS <= change.changed and change.after.values["response_by"] == sh(3, 11)
    assert set(kit.jobs()) == {"response", "resolution"}  # scheduled once the row was stored


def test_an_update_amends_one_update_with_one_history_entry(kit: Kit, recorder: Recorder) -> None:
    ticket = kit.create("ticket", subject="A")
    kit.clock.now = sh(3, 9, 30)
    updated = kit.records.update(
        app="slat",
        form="ticket",
        record_id=ticket,
        data={"status": "waiting"},
        actor=None,
        version=1,
    ).record
    assert updated.version == 2
    assert updated.values["resolution_state"] == "paused"
    assert updated.values["on_hold_since"] == sh(3, 9, 30)
    assert history(kit, ticket)[1] == (
        2,
        "update",
        {"status", "resolution_state", "on_hold_since"},
    )
    change = recorder.changes[1]
    assert change.kind == "updated" and change.amended
    assert change.changed == {"status", "resolution_state", "on_hold_since"}
    assert change.before is not None and change.before.values["resolution_state"] == "running"


def test_a_write_the_sla_has_nothing_to_add_to_is_unchanged(kit: Kit, recorder: Recorder) -> None:
    ticket = kit.create("ticket", subject="A")
    kit.update(ticket, subject="B")
    assert history(kit, ticket)[1] == (2, "update", {"subject"})
    assert recorder.changes[1].changed == {"subject"}


def test_an_unamended_change_gets_its_fields_by_a_write_of_its_own(kit: Kit) -> None:
    plain = RecordService(db=kit.engine, registry=DefinitionRegistry(), clock=kit.clock)
    record = plain.create(app="slat", form="ticket", data={"subject": "Imported"}, actor=None)
    stored = record.record
    assert stored.values["response_by"] is None
    change = RecordChange(
        app="slat",
        form="ticket",
        record_id=stored.id,
        kind="created",
        before=None,
        after=stored,
        changed=changed_keys(None, stored.values),
        actor_id=None,
        source="import",
    )  # what the importer fires: nobody amended the insert
    with UnitOfWork(kit.engine, clock=kit.clock) as uow:
        kit.service(uow, change)
        uow.commit()
    values = kit.get(stored.id)
    assert values["response_by"] == sh(3, 11) and values["response_state"] == "running"
    assert [h[:2] for h in history(kit, stored.id)] == [(1, "create"), (2, "update")]
