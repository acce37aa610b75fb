"""The SLA runtime, pure: a record's values, the previous SLA state and the time in; the new
state, the record fields to store, the effects (warnings, breaches, escalation steps) and the
wake-up jobs out. The service (sla_service.py) and the job handlers (sla_jobs.py) both run
`advance`, so a change, a timer and a missed timer found by a sweep all take the same path.

Rules (AFTERSALES §3.3): due = D(start, target + hold) for pausable clocks, D(start, target)
otherwise; warn_at = D(start, share × target (+ hold)). Entering a pause status stores
on_hold_since; leaving adds B(on_hold_since, now) to the hold, which moves the deadlines. A policy
or targets-row change re-derives everything from the original start, except fulfilled clocks.
A fulfilled clock whose condition stops holding is a reopen: `continue` counts the time since
fulfilment as hold; `restart` starts a new clock now, with only the `restarts` clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.expr import Expression, evaluate, parse, references
from engine.flows.calendar import BusinessCalendar, add_business, business_seconds
from engine.flows.sla_spec import ClockSpec, PolicySpec, SlaSpec
from engine.flows.sla_state import ClockState, Effect, SlaState, Step, Wakeup


class CompiledSla:
    """An SLA definition with its expressions parsed once."""

    def __init__(self, spec: SlaSpec, app: str) -> None:
        self.spec, self.app = spec, app
        self.conditions = {p.key: _parse(p.condition) for p in spec.policies}
        self.fulfilled = {c.key: parse(c.fulfilled_when) for c in spec.clocks}
        self.stop = _parse(spec.stop_when)
        self.when = [_parse(s.when) for s in spec.escalations]
        self.sets = [{k: parse(t) for k, t in s.set.items()} for s in spec.escalations]
        self.outputs = _output_fields(spec)
        exprs = [*self.conditions.values(), *self.fulfilled.values(), self.stop, *self.when]
        exprs += [e for step in self.sets for e in step.values()]
        paths = {n for e in exprs if e is not None for n in references(e) if "." in n}
        paths.update(p for s in spec.escalations for p in s.notify if "." in p)
        paths.update(p for p in spec.warn_notify if "." in p)
        self.related_paths = frozenset(paths)

    def policy(self, values: Mapping[str, Any], now: datetime) -> PolicySpec:
        """The first policy whose condition holds; the default when none does."""
        default = next(p for p in self.spec.policies if p.default)
        for policy in self.spec.policies:
            condition = self.conditions[policy.key]
            if condition is not None and evaluate(condition, values, now=now) is True:
                return policy
        return default


def _parse(text: str | None) -> Expression | None:
    return None if text is None else parse(text)


def _output_fields(spec: SlaSpec) -> frozenset[str]:
    keys = {v for v in spec.fields.model_dump().values() if v}
    for clock in spec.clocks:
        keys.update(v for v in clock.fields.model_dump().values() if v)
    return frozenset(keys)


def _targets(policy: PolicySpec, value: str | None, clock: ClockSpec, restart: bool) -> int | None:
    if restart and not clock.restarts:
        return None
    minutes = policy.targets.get(value or "", {}).get(clock.key)
    return None if minutes is None else minutes * 60


def advance(
    sla: CompiledSla,
    previous: SlaState | None,
    values: Mapping[str, Any],
    *,
    now: datetime,
    started_at: datetime,
    calendars: Mapping[str, BusinessCalendar],
) -> Step:
    """The SLA after `values` were written (or a timer fired) at `now`."""
    spec = sla.spec
    policy = sla.policy(values, now)
    select_value = _text(values.get(spec.select_by))
    if previous is not None and previous.frozen is not None and select_value == previous.frozen:
        select_value = previous.select_value
    cal = calendars[policy.calendar]
    state, recomputed = _rebase(sla, previous, policy, select_value, started_at)
    if state.stopped:
        return Step(state, fields_of(sla, state), (), ())
    status = _text(values.get(spec.status_field))
    pauses = policy.pause_statuses if policy.pause_statuses is not None else spec.pause_statuses
    paused = status in pauses
    if paused and state.on_hold_since is None:
        state = replace(state, on_hold_since=now)
    elif not paused and state.on_hold_since is not None:
        held = business_seconds(cal, state.on_hold_since, now)
        state = replace(state, hold=state.hold + max(held, 0.0), on_hold_since=None)
    fulfilled = {
        c.key: evaluate(sla.fulfilled[c.key], values, now=now) is True for c in spec.clocks
    }
    state = _reopen(sla, state, policy, fulfilled, now, cal)
    clocks = {c.key: _clock(c, state, policy, fulfilled[c.key], now, cal) for c in spec.clocks}
    state = replace(state, clocks=clocks)
    if sla.stop is not None and evaluate(sla.stop, values, now=now) is True:
        state = replace(state, stopped=True, scheduled={})
        cancels = tuple(Wakeup(k, "sla.breach", None) for k in (previous or state).scheduled)
        return Step(state, fields_of(sla, state), (), cancels, recomputed)
    state, effects = _effects(sla, state, values, now, cal)
    state, wakeups = _wakeups(sla, state, cal, now)
    return Step(state, fields_of(sla, state), tuple(effects), wakeups, recomputed)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _rebase(
    sla: CompiledSla,
    previous: SlaState | None,
    policy: PolicySpec,
    select_value: str | None,
    started_at: datetime,
) -> tuple[SlaState, bool]:
    """The previous state, with targets re-derived if the policy, its calendar or the targets
    changed (another row, or a new version of the definition)."""
    restart = previous is not None and previous.cycle > 0 and policy.reopen_mode == "restart"
    if previous is None:
        state = SlaState(policy.key, policy.calendar, select_value, start=started_at)
    elif (
        previous.policy == policy.key
        and previous.calendar == policy.calendar
        and previous.select_value == select_value
        and _targets_hold(sla, previous, policy, select_value, restart)
    ):
        return previous, False
    else:
        state = replace(
            previous,
            policy=policy.key,
            calendar=policy.calendar,
            select_value=select_value,
            frozen=None,
        )
    clocks = {}
    for clock in sla.spec.clocks:
        old = state.clocks.get(clock.key)
        if old is not None and old.fulfilled_at is not None:
            clocks[clock.key] = old  # a response already given keeps its target
        else:
            target = _targets(policy, select_value, clock, restart)
            warned = old.warned if old is not None else False
            clocks[clock.key] = ClockState(target=target, warned=warned)
    return replace(state, clocks=clocks), previous is not None


def _targets_hold(
    sla: CompiledSla, state: SlaState, policy: PolicySpec, value: str | None, restart: bool
) -> bool:
    """Whether every open clock still has the target the policy gives it."""
    for clock in sla.spec.clocks:
        current = state.clocks.get(clock.key, ClockState(target=None))
        if current.fulfilled_at is None and current.target != _targets(
            policy, value, clock, restart
        ):
            return False
    return True


def _reopen(
    sla: CompiledSla,
    state: SlaState,
    policy: PolicySpec,
    fulfilled: Mapping[str, bool],
    now: datetime,
    cal: BusinessCalendar,
) -> SlaState:
    reopened = [
        key
        for key, clock in state.clocks.items()
        if clock.fulfilled_at is not None and not fulfilled.get(key, False)
    ]
    if not reopened:
        return state
    since = min(state.clocks[k].fulfilled_at for k in reopened)  # type: ignore[type-var]
    if policy.reopen_mode == "restart":
        clocks = {
            c.key: ClockState(target=_targets(policy, state.select_value, c, True))
            for c in sla.spec.clocks
        }
        held_since = now if state.on_hold_since is not None else None
        return replace(
            state,
            start=now,
            hold=0.0,
            on_hold_since=held_since,
            clocks=clocks,
            cycle=state.cycle + 1,
            fired=frozenset(),
        )
    assert since is not None
    hold = state.hold + max(business_seconds(cal, since, now), 0.0)
    clocks = dict(state.clocks)
    for key in reopened:
        clocks[key] = ClockState(target=clocks[key].target)
    return replace(state, hold=hold, clocks=clocks, cycle=state.cycle + 1, fired=frozenset())


def _due(cal: BusinessCalendar, state: SlaState, clock: ClockSpec, seconds: float) -> datetime:
    return add_business(cal, state.start, seconds + (state.hold if clock.pausable else 0.0))


def _clock(
    clock: ClockSpec,
    state: SlaState,
    policy: PolicySpec,
    fulfilled: bool,
    now: datetime,
    cal: BusinessCalendar,
) -> ClockState:
    current = state.clocks[clock.key]
    if current.target is None:
        return ClockState(target=None)
    if current.fulfilled_at is not None:
        return current
    due = _due(cal, state, clock, current.target)
    warn_at = _due(cal, state, clock, policy.warn_share * current.target)
    hold = state.hold if clock.pausable else 0.0
    if fulfilled:
        elapsed = business_seconds(cal, state.start, now) - hold
        if now <= due:
            return replace(
                current,
                state="met",
                due=due,
                warn_at=warn_at,
                fulfilled_at=now,
                late=0.0,
                elapsed=elapsed,
            )
        late = business_seconds(cal, due, now)
        return replace(
            current,
            state="breached",
            due=due,
            warn_at=warn_at,
            fulfilled_at=now,
            late=late,
            elapsed=elapsed,
        )
    if clock.pausable and state.on_hold_since is not None:
        return replace(current, state="paused", due=due, warn_at=warn_at)
    if now >= due:
        return replace(
            current,
            state="breached",
            due=due,
            warn_at=warn_at,
            late=business_seconds(cal, due, now),
        )
    name = "warned" if current.warned else "running"
    return replace(current, state=name, due=due, warn_at=warn_at, late=None)


def _step_at(sla: CompiledSla, index: int, clock: ClockState, cal: BusinessCalendar) -> datetime:
    share = sla.spec.escalations[index].after_share
    assert clock.due is not None and clock.target is not None
    return clock.due if share == 0 else add_business(cal, clock.due, share * clock.target)


def _effects(
    sla: CompiledSla,
    state: SlaState,
    values: Mapping[str, Any],
    now: datetime,
    cal: BusinessCalendar,
) -> tuple[SlaState, list[Effect]]:
    """Warnings, breaches and escalation steps that are due now and not done yet."""
    effects: list[Effect] = []
    clocks = dict(state.clocks)
    open_states = ("running", "warned", "breached")
    for key, clock in clocks.items():
        if clock.fulfilled_at is not None or clock.state not in open_states:
            continue
        assert clock.warn_at is not None
        if not clock.warned and now >= clock.warn_at and clock.state != "breached":
            clock = replace(clock, warned=True, state="warned")
            effects.append(Effect("warn", key, notify=_users(values, sla.spec.warn_notify)))
        if clock.state == "breached" and not clock.breached:
            clock = replace(clock, breached=True, warned=True)
            effects.append(Effect("breach", key))
        clocks[key] = clock
    level, fired = state.level, set(state.fired)
    for index, step in enumerate(sla.spec.escalations):
        target = clocks.get(step.clock)
        if index in fired or target is None or target.state != "breached" or target.fulfilled_at:
            continue
        if now < _step_at(sla, index, target, cal):
            continue
        condition = sla.when[index]
        if condition is not None and evaluate(condition, values, now=now) is not True:
            continue
        fired.add(index)
        level = max(level, step.level)
        sets = {k: evaluate(e, values, now=now) for k, e in sla.sets[index].items()}
        effects.append(Effect("escalate", step.clock, index, _users(values, step.notify), sets))
    state = replace(state, clocks=clocks, level=level, fired=frozenset(fired))
    select_by = sla.spec.select_by
    for effect in effects:  # our own change of the select_by field does not recompute targets
        if select_by in effect.set_values:
            state = replace(state, frozen=_text(effect.set_values[select_by]))
    return state, effects


def _users(values: Mapping[str, Any], paths: tuple[str, ...]) -> tuple[int, ...]:
    found = (values.get(p) for p in paths)
    return tuple(dict.fromkeys(int(v) for v in found if isinstance(v, int | float) and v))


def _wakeups(
    sla: CompiledSla, state: SlaState, cal: BusinessCalendar, now: datetime
) -> tuple[SlaState, tuple[Wakeup, ...]]:
    """One job per open clock, at its next warning, breach or escalation step still to come
    (the handler schedules the one after); only the changes against what is scheduled."""
    wanted: dict[str, tuple[str, datetime]] = {}
    for key, clock in state.clocks.items():
        if clock.fulfilled_at is not None or clock.state not in ("running", "warned", "breached"):
            continue
        assert clock.due is not None and clock.warn_at is not None
        pending = [(clock.warn_at, "sla.warn")] if not clock.warned else []
        pending += [(clock.due, "sla.breach")] if not clock.breached else []
        for index, step in enumerate(sla.spec.escalations):
            if step.clock == key and index not in state.fired and step.after_share > 0:
                pending.append((_step_at(sla, index, clock, cal), "sla.breach"))
        # what is due by now was handled (or skipped: a step whose `when` did not hold)
        upcoming = [item for item in pending if item[0] > now]
        if upcoming:
            due, kind = min(upcoming)
            wanted[key] = (kind, due)
    wakeups = [
        Wakeup(suffix, kind, due)
        for suffix, (kind, due) in wanted.items()
        if state.scheduled.get(suffix) != due
    ]
    wakeups += [Wakeup(s, "sla.breach", None) for s in state.scheduled if s not in wanted]
    return replace(state, scheduled={s: d for s, (_, d) in wanted.items()}), tuple(wakeups)


def fields_of(sla: CompiledSla, state: SlaState) -> dict[str, Any]:
    """The record fields that receive the state (business seconds rounded to whole seconds)."""
    spec, out = sla.spec, {}
    shared = {
        "policy": state.policy,
        "start": state.start,
        "on_hold_since": state.on_hold_since,
        "hold": round(state.hold),
        "escalation_level": state.level,
    }
    for role, value in shared.items():
        key = getattr(spec.fields, role)
        if key:
            out[key] = value
    for clock in spec.clocks:
        current = state.clocks.get(clock.key, ClockState(target=None))
        per_clock = {
            "target": current.target,
            "due": current.due,
            "warn_at": current.warn_at,
            "state": current.state,
            "late": None if current.late is None else round(current.late),
            "elapsed": None if current.elapsed is None else round(current.elapsed),
        }
        for role, value in per_clock.items():
            key = getattr(clock.fields, role)
            if key:
                out[key] = value
    return out


__all__ = ["CompiledSla", "advance", "fields_of"]
