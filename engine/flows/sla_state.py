"""The SLA runtime's values: a record's clock state (stored as JSON in `sla_clocks`) and what
one evaluation returns (fields, effects, wake-up jobs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ClockState:
    target: int | None  # business seconds; None: no target (n_a)
    state: str = "n_a"  # running, warned, paused, met, breached, n_a
    due: datetime | None = None
    warn_at: datetime | None = None
    fulfilled_at: datetime | None = None
    late: float | None = None
    elapsed: float | None = None
    warned: bool = False  # the warning of this cycle was sent
    breached: bool = False  # the breach of this cycle was handled


@dataclass(frozen=True, slots=True)
class SlaState:
    policy: str
    calendar: str
    select_value: str | None  # the select_by value the targets come from
    start: datetime
    hold: float = 0.0
    on_hold_since: datetime | None = None
    level: int = 0
    cycle: int = 0  # bumped by a reopen: warnings and steps may fire again
    stopped: bool = False
    clocks: Mapping[str, ClockState] = field(default_factory=dict)
    fired: frozenset[int] = frozenset()  # escalation steps done in this cycle
    scheduled: Mapping[str, datetime] = field(default_factory=dict)  # job key suffix → due
    frozen: str | None = None  # a select_by value an escalation wrote: the targets stay


@dataclass(frozen=True, slots=True)
class Effect:
    """Something that happened now: a warning, a breach or an escalation step."""

    kind: str  # "warn", "breach", "escalate"
    clock: str
    step: int | None = None
    notify: tuple[int, ...] = ()
    set_values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wakeup:
    """Schedule (due_at set) or cancel (due_at None) the job `key_suffix` of this record."""

    key_suffix: str
    kind: str
    due_at: datetime | None


@dataclass(frozen=True, slots=True)
class Step:
    state: SlaState
    fields: dict[str, Any]
    effects: tuple[Effect, ...]
    wakeups: tuple[Wakeup, ...]
    recomputed: bool = False  # the policy or targets changed


__all__ = ["ClockState", "Effect", "SlaState", "Step", "Wakeup"]
