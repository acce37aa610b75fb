"""A ticket's SLA replayed through the engine's pure runtime (`engine.flows.sla.advance`):
each generated event is a write at its instant, and every wake-up the runtime schedules in
between fires as the worker's job would, so warnings, breaches and escalations (with their
field changes) happen exactly as on a live instance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.flows.calendar import BusinessCalendar
from engine.flows.sla import CompiledSla, advance
from engine.flows.sla_state import SlaState, Step

Event = tuple[datetime, Mapping[str, Any]]


def replay(
    sla: CompiledSla,
    calendars: Mapping[str, BusinessCalendar],
    values: dict[str, Any],
    related: Mapping[str, Any],
    events: Sequence[Event],
    *,
    end: datetime,
    observe: datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply `events` (the first is the creation) to `values` in place, up to `end`; the SLA
    fields after the last event or timer, and those right after the event at `observe`."""
    started = events[0][0]
    state: SlaState | None = None
    fields: dict[str, Any] = {}
    seen: dict[str, Any] = {}

    def run(now: datetime) -> None:
        nonlocal state, fields
        step: Step = advance(
            sla, state, {**values, **related}, now=now, started_at=started, calendars=calendars
        )
        state, fields = step.state, step.fields
        for effect in step.effects:
            values.update(effect.set_values)

    def timers_until(limit: datetime) -> None:
        while state is not None and state.scheduled:
            due = min(state.scheduled.values())
            if due > limit:
                return
            run(due)

    for at, changes in events:
        if at > end:
            break
        timers_until(at)
        values.update(changes)
        run(at)
        if at == observe:
            seen = fields
    timers_until(end)
    return fields, seen


__all__ = ["Event", "replay"]
