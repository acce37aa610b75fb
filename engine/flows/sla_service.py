"""SLA tracking as a record-change listener: on every write of a form that has an SLA, run the
pure runtime (sla.py) and, in the writer's transaction, store the clock state, write the SLA
fields on the record, reschedule the warn/breach jobs and send the notifications.

The listener amends the write that fires it (engine/forms/events.py): the SLA fields are stored
by that write's own INSERT or UPDATE, with its history entry and change event, and the state,
jobs and notifications follow once the row is stored. Changes nobody amended (imports) and
fired jobs (`tick`) write the fields with a record write of their own.

Wiring: `records = RecordService(..., listeners=listeners)` then
`listeners.append(sla_listener(records, registry))`; the worker gets `sla_jobs.job_handlers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.flows.calendar import BusinessCalendar
from engine.flows.sla import CompiledSla, advance
from engine.flows.sla_related import related_values
from engine.flows.sla_state import Effect, SlaState, Step, Wakeup
from engine.flows.sla_store import SlaDefinitions, load_state, missing_calendar, save_state
from engine.forms.events import Amendment, ChangeListener, PendingWrite, RecordChange
from engine.forms.record_writer import RecordWriter
from engine.forms.service import RecordService
from engine.jobs.queue import cancel, enqueue
from engine.outbox import notify
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage.form_records import StoredRecord
from engine.storage.tables_sla import sla_clocks
from engine.storage.uow import UnitOfWork

# Records whose SLA fields this service is writing right now: their change event is our own.
_WRITING: ContextVar[frozenset[tuple[str, str, int]]] = ContextVar(
    "sla_writing", default=frozenset()
)


class SlaService:
    """Runs the SLAs of changed records and of fired jobs; holds the definition caches."""

    def __init__(
        self,
        records: RecordService,
        registry: DefinitionRegistry,
        *,
        definitions: SlaDefinitions | None = None,
    ) -> None:
        self.records = records
        self.registry = registry
        self.definitions = definitions or SlaDefinitions()

    def __call__(self, uow: UnitOfWork, change: RecordChange) -> None:
        """The service is the listener (with `amend`, an amending one)."""
        self.on_change(uow, change)

    def on_change(self, uow: UnitOfWork, change: RecordChange) -> None:
        if (change.app, change.form, change.record_id) in _WRITING.get():
            return
        if change.amended and change.kind in ("created", "updated"):
            return  # `amend` did it
        slas = self.definitions.for_form(uow, app=change.app, form=change.form)
        if not slas:
            return
        writer = self.records.writer(uow, source="system", depth=change.depth + 1)
        now = uow.clock()
        for sla, version in slas:
            if change.kind == "deleted":
                self._stop(uow, sla, version, change.record_id, now)
            else:
                if change.kind == "restored":
                    self._stop(uow, sla, version, change.record_id, now, stopped=False)
                self._run(uow, writer, sla, version, change.after, now)

    def tick(
        self, uow: UnitOfWork, *, app: str, form: str, record_id: int, sla: str, now: datetime
    ) -> Step | None:
        """Re-check one record's SLA at `now` (a job fired); None when there is nothing to do."""
        found = self.definitions.one(uow, app=app, key=sla)
        if found is None or found[0].spec.form != form:
            return None
        writer = self.records.writer(uow, source="system", depth=1)
        self._lock_record(uow, app, form, record_id)
        try:
            record = writer.get(app, form, record_id)
        except NotFoundError:
            return None
        return self._run(uow, writer, found[0], found[1], record, now)

    def _lock_record(
        self,
        uow: UnitOfWork,
        app: str,
        form: str,
        record_id: int,
        definition: FormDefinition | None = None,
    ) -> None:
        """Lock the record row before the clock row, the order of a record write (which locks
        its row, then the listener the clock row): a job and a write never deadlock."""
        if uow.conn.dialect.name != "postgresql":
            return  # SQLite runs one writer at a time
        definition = definition or self.registry.form(uow, app=app, key=form)
        main = self.records.layout(definition).main
        uow.conn.execute(sa.select(main.c.id).where(main.c.id == record_id).with_for_update())

    def recompute(self, uow: UnitOfWork, *, app: str, now: datetime) -> int:
        """Re-run every running clock of `app`, e.g. after a calendar or SLA definition changed
        (deadlines move, jobs are rescheduled, a deadline now past breaches); returns how many."""
        rows = uow.conn.execute(
            sa.select(sla_clocks.c.form, sla_clocks.c.record_id, sla_clocks.c.sla)
            .where(sla_clocks.c.app == app, sla_clocks.c.stopped.is_(False))
            .order_by(sla_clocks.c.id)
        ).all()
        for form, record_id, sla in rows:
            self.tick(uow, app=app, form=form, record_id=int(record_id), sla=sla, now=now)
        return len(rows)

    # --- one record ---------------------------------------------------------------------------

    def amend(self, uow: UnitOfWork, pending: PendingWrite) -> Amendment | None:
        """The SLA fields of a record about to be stored; the state, jobs and notifications
        follow once it is stored (its id is known then)."""
        app, form, record_id = pending.app, pending.form, pending.record_id
        if record_id is not None and (app, form, record_id) in _WRITING.get():
            return None
        slas = self.definitions.for_form(uow, app=app, form=form)
        if not slas:
            return None
        if record_id is not None:
            self._lock_record(uow, app, form, record_id, pending.definition)
        now = uow.clock()
        created_at = now if pending.before is None else pending.before.created_at
        fields = pending.definition.compiled.fields
        steps: list[tuple[CompiledSla, int, Step, SlaState | None]] = []
        values: dict[str, Any] = {}
        for sla, version in slas:
            step, previous = self._evaluate(
                uow, sla, record_id, pending.values, created_at, now, pending.definition
            )
            steps.append((sla, version, step, previous))
            values.update(_different(fields, pending.values, _changes(step)))

        def then(uow: UnitOfWork, change: RecordChange) -> None:
            for sla, version, step, previous in steps:
                self._persist(uow, sla, version, change.record_id, step, previous, now)

        return Amendment(values, then)

    def _run(
        self,
        uow: UnitOfWork,
        writer: RecordWriter,
        sla: CompiledSla,
        version: int,
        record: StoredRecord,
        now: datetime,
    ) -> Step:
        step, previous = self._evaluate(uow, sla, record.id, record.values, record.created_at, now)
        self._persist(uow, sla, version, record.id, step, previous, now)
        self._write(writer, sla, record, _changes(step))
        return step

    def _evaluate(
        self, uow: UnitOfWork, sla: CompiledSla, record_id: int | None,
        values: Mapping[str, Any], created_at: datetime, now: datetime,
        definition: FormDefinition | None = None,
    ) -> tuple[Step, SlaState | None]:  # fmt: skip
        """The SLA step of a record's values at `now` and the state it advanced from (None for
        a record not stored yet)."""
        app, form, key = sla.app, sla.spec.form, sla.spec.key
        previous = (
            None
            if record_id is None
            else load_state(uow.conn, app=app, form=form, record_id=record_id, sla=key)
        )
        related = related_values(
            uow, registry=self.registry, records=self.records, app=app, form=form,
            values=values, paths=sla.related_paths, definition=definition,
        )  # fmt: skip
        calendars = self.definitions.calendars(uow, app=app)
        _require_calendars(sla, app, calendars)
        step = advance(
            sla, previous, {**values, **related}, now=now, started_at=created_at,
            calendars=calendars,
        )  # fmt: skip
        return step, previous

    def _persist(
        self, uow: UnitOfWork, sla: CompiledSla, version: int, record_id: int, step: Step,
        previous: SlaState | None, now: datetime,
    ) -> None:  # fmt: skip
        """Store the clock state, reschedule the wake-up jobs, send the notifications."""
        save_state(
            uow.conn, app=sla.app, form=sla.spec.form, record_id=record_id, sla=sla.spec.key,
            version=version, state=step.state, now=now, new=previous is None,
        )  # fmt: skip
        for wakeup in step.wakeups:
            _schedule(uow, sla, record_id, wakeup, previous)
        for effect in step.effects:
            self._announce(uow, sla, record_id, effect, step.state)

    def _stop(
        self, uow: UnitOfWork, sla: CompiledSla, version: int, record_id: int, now: datetime,
        *, stopped: bool = True,
    ) -> None:  # fmt: skip
        """Stop the clocks of a deleted record (or, `stopped=False`, let a restored record's run
        again: the next evaluation stops them anew if `stop_when` holds)."""
        app, form, key = sla.app, sla.spec.form, sla.spec.key
        state = load_state(uow.conn, app=app, form=form, record_id=record_id, sla=key)
        if state is None or state.stopped == stopped:
            return
        for suffix, due in state.scheduled.items():
            cancel(uow.conn, key=job_key(sla, record_id, suffix, due))
        changed = SlaState(**{**_fields(state), "stopped": stopped, "scheduled": {}})
        save_state(
            uow.conn, app=app, form=form, record_id=record_id, sla=key, version=version,
            state=changed, now=now,
        )  # fmt: skip

    def _announce(
        self, uow: UnitOfWork, sla: CompiledSla, record_id: int, effect: Effect, state: SlaState
    ) -> None:
        if not effect.notify:
            return
        clock = state.clocks[effect.clock]
        what = {"warn": "warning", "breach": "breached", "escalate": "escalated"}[effect.kind]
        subject = f"SLA {what}: {sla.spec.form} #{record_id} {effect.clock}"
        due = clock.due.isoformat() if clock.due else "-"
        body = f"The {effect.clock} target of {sla.spec.form} #{record_id} is due {due}."
        if effect.kind == "escalate":
            body += f" Escalation level {state.level}."
        key = f"{job_key(sla, record_id, effect.clock, None)}:{effect.kind}:{state.cycle}"
        notify(uow.conn, user_ids=effect.notify, subject=subject, body=body,
               key=f"{key}:{effect.step}")  # fmt: skip

    def _write(
        self, writer: RecordWriter, sla: CompiledSla, record: StoredRecord, changes: dict[str, Any]
    ) -> None:
        fields = self.registry.form(writer.uow, app=sla.app, key=sla.spec.form).compiled.fields
        different = _different(fields, record.values, changes)
        if not different:
            return
        marker = (sla.app, sla.spec.form, record.id)
        token = _WRITING.set(_WRITING.get() | {marker})
        try:
            writer.update(sla.app, sla.spec.form, record.id, different, actor=None)
        finally:
            _WRITING.reset(token)


def _changes(step: Step) -> dict[str, Any]:
    """The record fields a step sets: the SLA fields, then what its effects set."""
    changes = dict(step.fields)
    for effect in step.effects:
        changes.update(effect.set_values)
    return changes


def _different(
    fields: Mapping[str, Any], stored: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    # a form published after the SLA may have dropped a field: skip it, never fail the write
    return {k: v for k, v in changes.items() if k in fields and not _same(stored.get(k), v)}


def _fields(state: SlaState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in SlaState.__dataclass_fields__}


def _same(stored: Any, new: Any) -> bool:
    if isinstance(stored, int | float | Decimal) and isinstance(new, int | float | Decimal):
        return Decimal(str(stored)) == Decimal(str(new))
    return bool(stored == new)


def _require_calendars(
    sla: CompiledSla, app: str, calendars: Mapping[str, BusinessCalendar]
) -> None:
    for policy in sla.spec.policies:
        if policy.calendar not in calendars:
            raise missing_calendar(app, policy.calendar)


def job_key(sla: CompiledSla, record_id: int, suffix: str, due: datetime | None) -> str:
    """The job key of one wake-up; the due time is part of it, so a moved deadline is a new
    job and never collides with the old one while that one runs."""
    base = f"sla:{sla.app}:{sla.spec.form}:{record_id}:{sla.spec.key}:{suffix}"
    return base if due is None else f"{base}@{int(due.timestamp())}"


def _schedule(
    uow: UnitOfWork, sla: CompiledSla, record_id: int, wakeup: Wakeup, previous: SlaState | None
) -> None:
    old = None if previous is None else previous.scheduled.get(wakeup.key_suffix)
    if old is not None:
        cancel(uow.conn, key=job_key(sla, record_id, wakeup.key_suffix, old))
    if wakeup.due_at is None:
        return
    payload = {"app": sla.app, "form": sla.spec.form, "record_id": record_id, "sla": sla.spec.key}
    enqueue(
        uow.conn,
        kind=wakeup.kind,
        payload=payload,
        due_at=wakeup.due_at,
        key=job_key(sla, record_id, wakeup.key_suffix, wakeup.due_at),
    )


def sla_listener(
    records: RecordService, registry: DefinitionRegistry, *, service: SlaService | None = None
) -> ChangeListener:
    """The RecordChange listener that keeps every record's SLA fields and jobs current."""
    return service or SlaService(records, registry)


__all__ = ["SlaService", "job_key", "sla_listener"]
