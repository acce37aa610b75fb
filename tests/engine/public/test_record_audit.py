"""Record deletions, restores and exports reach the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from engine.forms.events import RecordChange
from engine.forms.record_audit import audit_export, audit_record_change
from engine.storage.form_records import StoredRecord
from engine.storage.uow import UnitOfWork


def _change(kind: str) -> RecordChange:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    record = StoredRecord(7, 3, at, None, at, None, None, at if kind == "deleted" else None, {})
    return RecordChange(
        app="desk",
        form="request",
        record_id=7,
        kind=kind,  # type: ignore[arg-type]
        before=record,
        after=record,
        changed=frozenset(),
        actor_id=None,
        source="api",
    )


def test_deletes_and_restores_are_audited_in_the_writers_transaction(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    with uow_factory() as uow:
        for kind in ("created", "updated", "deleted", "restored"):
            audit_record_change(uow, _change(kind))
        uow.commit()
    with uow_factory() as uow:
        audit_record_change(uow, _change("deleted"))  # rolled back: leaves nothing
    with uow_factory() as uow:
        entries = uow.audit.query(target_kind="record")
    assert [e.action for e in entries] == ["record.restore", "record.delete"]
    assert {e.target_key for e in entries} == {"desk.request#7"}
    assert entries[0].detail == {"source": "api", "version": 3}


def test_exports_are_audited(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork]
) -> None:
    audit_export(
        migrated_engine, app="desk", form="request", actor_id=None, detail={"format": "csv"}
    )
    with uow_factory() as uow:
        (entry,) = uow.audit.query(action="record.export")
    assert (entry.target_kind, entry.target_key, entry.detail) == (
        "form",
        "desk.request",
        {"format": "csv"},
    )
