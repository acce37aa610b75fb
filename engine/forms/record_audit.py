"""Audit entries for record deletions, restores and exports (issue 4 §6).

A record change listener (engine/forms/events.py) writes `record.delete` and `record.restore`
in the writer's own transaction, so a rolled-back delete leaves no entry. Exports call
`audit_export` once the actor is allowed to export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from engine.forms.events import RecordChange
from engine.storage.uow import UnitOfWork

ACTIONS = {"deleted": "record.delete", "restored": "record.restore"}


def record_target(app: str, form: str, record_id: int | None = None) -> str:
    """The audit `target_key` of a record (`app.form#id`) or of a whole form (`app.form`)."""
    return f"{app}.{form}" if record_id is None else f"{app}.{form}#{record_id}"


def audit_record_change(uow: UnitOfWork, change: RecordChange) -> None:
    """Record change listener: one audit entry per deletion or restore, other kinds ignored."""
    action = ACTIONS.get(change.kind)
    if action is None:
        return
    uow.audit.record(
        action=action,
        target_kind="record",
        target_key=record_target(change.app, change.form, change.record_id),
        actor=change.actor_id,
        detail={"source": change.source, "version": change.after.version},
    )


def audit_export(
    db: sa.Engine | sa.Connection,
    *,
    app: str,
    form: str,
    actor_id: int | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Write a `record.export` entry for an export of `app.form` (committed at once)."""
    with UnitOfWork(db) as uow:
        uow.audit.record(
            action="record.export",
            target_kind="form",
            target_key=record_target(app, form),
            actor=actor_id,
            detail=dict(detail or {}),
        )
        uow.commit()


__all__ = ["ACTIONS", "audit_export", "audit_record_change", "record_target"]
