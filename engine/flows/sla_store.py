"""Where the SLA runtime keeps things: the clock state rows (table `sla_clocks`) and the
installed SLA and calendar definitions, compiled once per version."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.flows.calendar import BusinessCalendar
from engine.flows.calendar_spec import CalendarSpec
from engine.flows.sla import CompiledSla
from engine.flows.sla_spec import SlaSpec
from engine.flows.sla_state import ClockState, SlaState
from engine.storage.tables_sla import sla_clocks
from engine.storage.uow import UnitOfWork

SLAS = "slas"
CALENDARS = "calendars"
UNKNOWN_CALENDAR = "sla.unknown-calendar"


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def state_to_json(state: SlaState) -> dict[str, Any]:
    clocks = {
        key: {
            "target": c.target,
            "state": c.state,
            "due": _when(c.due),
            "warn_at": _when(c.warn_at),
            "fulfilled_at": _when(c.fulfilled_at),
            "late": c.late,
            "elapsed": c.elapsed,
            "warned": c.warned,
            "breached": c.breached,
        }
        for key, c in state.clocks.items()
    }
    return {
        "policy": state.policy,
        "calendar": state.calendar,
        "select_value": state.select_value,
        "start": _when(state.start),
        "hold": state.hold,
        "on_hold_since": _when(state.on_hold_since),
        "level": state.level,
        "cycle": state.cycle,
        "stopped": state.stopped,
        "clocks": clocks,
        "fired": sorted(state.fired),
        "scheduled": {k: _when(v) for k, v in state.scheduled.items()},
        "frozen": state.frozen,
    }


def state_from_json(data: dict[str, Any]) -> SlaState:
    clocks = {
        key: ClockState(
            target=c["target"],
            state=c["state"],
            due=_parse_when(c["due"]),
            warn_at=_parse_when(c["warn_at"]),
            fulfilled_at=_parse_when(c["fulfilled_at"]),
            late=c["late"],
            elapsed=c["elapsed"],
            warned=c["warned"],
            breached=c["breached"],
        )
        for key, c in data["clocks"].items()
    }
    start = _parse_when(data["start"])
    assert start is not None
    scheduled = {k: _parse_when(v) for k, v in data["scheduled"].items()}
    return SlaState(
        policy=data["policy"],
        calendar=data["calendar"],
        select_value=data["select_value"],
        start=start,
        hold=float(data["hold"]),
        on_hold_since=_parse_when(data["on_hold_since"]),
        level=int(data["level"]),
        cycle=int(data["cycle"]),
        stopped=bool(data["stopped"]),
        clocks=clocks,
        fired=frozenset(int(i) for i in data["fired"]),
        scheduled={k: v for k, v in scheduled.items() if v is not None},
        frozen=data.get("frozen"),
    )


def load_state(
    conn: sa.Connection, *, app: str, form: str, record_id: int, sla: str, lock: bool = True
) -> SlaState | None:
    """The stored state, row-locked on PostgreSQL so a job and a write do not interleave."""
    query = sa.select(sla_clocks.c.state).where(
        sla_clocks.c.app == app,
        sla_clocks.c.form == form,
        sla_clocks.c.record_id == record_id,
        sla_clocks.c.sla == sla,
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).scalar_one_or_none()
    return None if found is None else state_from_json(found)


def save_state(
    conn: sa.Connection,
    *,
    app: str,
    form: str,
    record_id: int,
    sla: str,
    version: int,
    state: SlaState,
    now: datetime,
    new: bool = False,
) -> None:
    """Store a record's clock state; `new`: `load_state` found none (under the record's lock),
    so it is inserted without trying an update first."""
    values = {
        "sla_version": version,
        "policy": state.policy,
        "stopped": state.stopped,
        "state": state_to_json(state),
        "updated_at": now,
    }
    where = sa.and_(
        sla_clocks.c.app == app,
        sla_clocks.c.form == form,
        sla_clocks.c.record_id == record_id,
        sla_clocks.c.sla == sla,
    )
    if new or conn.execute(sla_clocks.update().where(where).values(values)).rowcount == 0:
        keys = {"app": app, "form": form, "record_id": record_id, "sla": sla}
        conn.execute(sla_clocks.insert().values({**keys, **values, "created_at": now}))


class SlaDefinitions:
    """The installed SLAs and calendars of each app, compiled once per published version."""

    def __init__(self) -> None:
        self._slas: dict[tuple[str, str, int, str], CompiledSla] = {}
        self._calendars: dict[tuple[str, str, int, str], BusinessCalendar] = {}
        self._lock = threading.Lock()

    def for_form(self, uow: UnitOfWork, *, app: str, form: str) -> list[tuple[CompiledSla, int]]:
        """The app's current SLA definitions on `form`, with their versions."""
        found = []
        for record in uow.definitions.list_definitions(app=app, kind=SLAS):
            cache_key = (app, record.key, record.current_version, record.current_digest)
            with self._lock:
                compiled = self._slas.get(cache_key)
            if compiled is None:
                body = uow.definitions.get_current(app=app, kind=SLAS, key=record.key).body
                compiled = self._compile(cache_key, body)
            if compiled.spec.form == form:
                found.append((compiled, record.current_version))
        return found

    def one(self, uow: UnitOfWork, *, app: str, key: str) -> tuple[CompiledSla, int] | None:
        """The current version of one SLA definition, or None when it is not installed."""
        try:
            current = uow.definitions.get_current(app=app, kind=SLAS, key=key)
        except NotFoundError:
            return None
        cache_key = (app, key, current.version, current.digest)
        with self._lock:
            compiled = self._slas.get(cache_key)
        return (compiled or self._compile(cache_key, current.body)), current.version

    def _compile(self, cache_key: tuple[str, str, int, str], body: Any) -> CompiledSla:
        compiled = CompiledSla(SlaSpec.model_validate(body), cache_key[0])
        with self._lock:
            self._slas[cache_key] = compiled
        return compiled

    def calendars(self, uow: UnitOfWork, *, app: str) -> dict[str, BusinessCalendar]:
        """Every current calendar of the app by key."""
        out = {}
        for record in uow.definitions.list_definitions(app=app, kind=CALENDARS):
            cache_key = (app, record.key, record.current_version, record.current_digest)
            with self._lock:
                calendar = self._calendars.get(cache_key)
            if calendar is None:
                body = uow.definitions.get_current(app=app, kind=CALENDARS, key=record.key).body
                calendar = BusinessCalendar(CalendarSpec.model_validate(body))
                with self._lock:
                    self._calendars[cache_key] = calendar
            out[record.key] = calendar
        return out

    def clear(self) -> None:
        with self._lock:
            self._slas.clear()
            self._calendars.clear()


def missing_calendar(app: str, key: str) -> NotFoundError:
    return NotFoundError(f"app {app!r} has no calendar {key!r}", code=UNKNOWN_CALENDAR)


__all__ = [
    "SlaDefinitions",
    "load_state",
    "missing_calendar",
    "save_state",
    "state_from_json",
    "state_to_json",
]
