"""The pure SLA runtime over the shipped ticket SLA and CN-8x5 (AFTERSALES §2.6, §3.3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.bundles._yaml import parse_yaml
from engine.bundles.limits import DEFAULT_LIMITS
from engine.flows.calendar import BusinessCalendar
from engine.flows.calendar_spec import CalendarSpec
from engine.flows.sla import CompiledSla, advance
from engine.flows.sla_spec import SlaSpec
from engine.flows.sla_state import SlaState, Step
from engine.flows.sla_store import state_from_json, state_to_json

BUNDLE = Path(__file__).resolve().parents[3] / "templates" / "aftersales"
SH = ZoneInfo("Asia/Shanghai")
H = 3600


def _yaml(path: Path) -> Any:
    data, problems = parse_yaml(path.read_text(), DEFAULT_LIMITS)
    assert not problems
    return data


@pytest.fixture(scope="module")
def sla() -> CompiledSla:
    return CompiledSla(SlaSpec.model_validate(_yaml(BUNDLE / "slas" / "ticket.yaml")), "aftersales")


@pytest.fixture(scope="module")
def calendars() -> dict[str, BusinessCalendar]:
    folder = BUNDLE / "calendars"
    return {
        name: BusinessCalendar(CalendarSpec.model_validate(_yaml(folder / f"{name}.yaml")))
        for name in ("cn_8x5", "always")
    }


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=SH)  # March 2025: the 3rd is a Monday


def ticket(**changes: Any) -> dict[str, Any]:
    values = {
        "priority": "high",
        "status": "assigned",
        "ticket_type": "repair",
        "first_response_at": None,
        "first_check_in_at": None,
        "assignee": 7,
        "assignee_supervisor": 8,
        "customer.tier": "standard",
        "contract.sla_policy.code": None,
        "team.manager": 9,
        "team.director": 10,
        "team.dispatcher": 11,
    }
    values.update(changes)
    return values


class Run:
    """Feeds successive record states through `advance`, as the service does."""

    def __init__(self, sla: CompiledSla, calendars: dict[str, BusinessCalendar]) -> None:
        self.sla, self.calendars = sla, calendars
        self.state: SlaState | None = None

    def at(self, now: datetime, values: dict[str, Any], start: datetime | None = None) -> Step:
        step = advance(
            self.sla,
            self.state,
            values,
            now=now,
            started_at=start or now,
            calendars=self.calendars,
        )
        # what the service stores is what it reads back next time
        self.state = state_from_json(state_to_json(step.state))
        assert self.state == step.state
        return step


@pytest.fixture
def run(sla: CompiledSla, calendars: dict[str, BusinessCalendar]) -> Run:
    return Run(sla, calendars)


def test_apply_on_create(run: Run) -> None:
    step = run.at(sh(3, 9), ticket())
    f = step.fields
    assert step.state.policy == "standard"
    assert f["sla_start"] == sh(3, 9)
    assert f["response_target_sec"] == 120 * 60
    assert f["response_by"] == sh(3, 11)
    assert f["response_warn_at"] == sh(3, 10, 30)  # 75 % of 120 bmin
    assert f["resolution_by"] == sh(4, 18)  # 960 bmin = two 8-hour days
    assert f["resolution_warn_at"] == sh(4, 14)  # 720 bmin
    assert f["onsite_by"] == sh(4, 18)
    assert f["response_state"] == f["resolution_state"] == "running"
    assert f["hold_bsec"] == 0 and f["escalation_level"] == 0
    scheduled = {w.key_suffix: (w.kind, w.due_at) for w in step.wakeups}
    assert scheduled == {  # one job per clock: its next event
        "response": ("sla.warn", sh(3, 10, 30)),
        "resolution": ("sla.warn", sh(4, 14)),
        "onsite": ("sla.warn", sh(4, 14)),
    }
    assert not step.effects


def test_each_job_schedules_the_next_event(run: Run) -> None:
    run.at(sh(3, 9), ticket())
    warned = run.at(sh(3, 10, 30), ticket())
    assert [(w.key_suffix, w.kind, w.due_at) for w in warned.wakeups] == [
        ("response", "sla.breach", sh(3, 11))
    ]
    responded = {"first_response_at": sh(3, 9, 5)}
    breached = run.at(sh(4, 18), ticket(**responded))
    nexts = {w.key_suffix: (w.kind, w.due_at) for w in breached.wakeups}
    assert nexts["response"] == ("sla.breach", None)  # met: cancelled
    assert nexts["resolution"] == ("sla.breach", sh(5, 18))  # L3 at +50 %: 480 bmin
    assert "onsite" in nexts and nexts["onsite"][1] is None  # breached, no step left


def test_policy_selection_in_order(run: Run, sla: CompiledSla) -> None:
    now = sh(3, 9)
    assert sla.policy(ticket(ticket_type="pm"), now).key == "pm"
    assert sla.policy(ticket(ticket_type="complaint", **{"customer.tier": "vip"}), now).key == (
        "complaint"
    )
    assert sla.policy(ticket(**{"contract.sla_policy.code": "C7X24"}), now).key == "c7x24"
    assert sla.policy(ticket(**{"customer.tier": "vip"}), now).key == "vip"
    step = run.at(sh(7, 17), ticket(**{"contract.sla_policy.code": "C7X24"}))
    assert step.fields["response_by"] == sh(7, 18)  # 7x24: an hour of wall-clock time
    assert step.fields["resolution_by"] == sh(8, 1)


def test_no_target_is_n_a(run: Run) -> None:
    step = run.at(sh(3, 9), ticket(priority="low"))
    assert step.fields["onsite_state"] == "n_a"
    assert step.fields["onsite_by"] is None and step.fields["onsite_target_sec"] is None


def test_response_met_with_elapsed_business_seconds(run: Run) -> None:
    run.at(sh(3, 9), ticket())
    step = run.at(sh(3, 10), ticket(first_response_at=sh(3, 10)))
    assert step.fields["response_state"] == "met"
    assert step.fields["frt_bsec"] == H
    assert step.fields["response_late_bsec"] == 0
    suffixes = {w.key_suffix: w.due_at for w in step.wakeups}
    assert suffixes == {"response": None}  # cancelled


def test_warning_fires_once_per_cycle(run: Run) -> None:
    run.at(sh(3, 9), ticket())
    step = run.at(sh(3, 10, 31), ticket())
    assert [(e.kind, e.clock, e.notify) for e in step.effects] == [("warn", "response", (7, 8))]
    assert step.fields["response_state"] == "warned"
    assert not run.at(sh(3, 10, 40), ticket()).effects


def test_breach_escalates_level_one_and_late_grows(run: Run) -> None:
    run.at(sh(3, 9), ticket())
    step = run.at(sh(3, 11, 30), ticket())
    kinds = [(e.kind, e.clock, e.step) for e in step.effects]
    assert kinds == [("breach", "response", None), ("escalate", "response", 0)]
    assert step.effects[1].notify == (7, 8)
    assert step.fields["response_state"] == "breached"
    assert step.fields["response_late_bsec"] == 30 * 60
    assert step.fields["escalation_level"] == 1
    later = run.at(sh(3, 14), ticket())
    assert not later.effects
    assert later.fields["response_late_bsec"] == 2 * H  # 11:00–12:00 and 13:00–14:00
    done = run.at(sh(3, 15), ticket(first_response_at=sh(3, 15)))
    assert done.fields["response_state"] == "breached"
    assert done.fields["response_late_bsec"] == 3 * H


def test_pause_adds_the_hold_back(run: Run) -> None:
    answered = {"first_response_at": sh(3, 9, 30)}
    run.at(sh(3, 9), ticket())
    paused = run.at(sh(3, 10), ticket(status="waiting_customer", **answered))
    assert paused.fields["resolution_state"] == "paused"
    assert paused.fields["response_state"] == "met"
    assert paused.fields["on_hold_since"] == sh(3, 10)
    cancelled = {w.key_suffix for w in paused.wakeups if w.due_at is None}
    assert cancelled == {"response", "resolution", "onsite"}  # response: met
    # the original deadline (Tue 18:00) passing during the pause is not a breach
    assert not run.at(sh(4, 18, 30), ticket(status="waiting_customer", **answered)).effects
    resumed = run.at(sh(5, 10), ticket(status="in_progress", **answered))
    assert resumed.fields["hold_bsec"] == 16 * H
    assert resumed.fields["on_hold_since"] is None
    assert resumed.fields["resolution_by"] == sh(6, 18)  # D(start, 16 h + 16 h hold)
    assert resumed.fields["resolution_warn_at"] == sh(6, 14)
    assert resumed.fields["resolution_state"] == "running"
    assert {w.key_suffix for w in resumed.wakeups if w.due_at} == {"resolution", "onsite"}


def test_priority_change_recomputes_from_the_original_start(run: Run) -> None:
    run.at(sh(3, 9), ticket())
    step = run.at(sh(3, 10, 30), ticket(priority="urgent"))
    assert step.recomputed
    assert step.fields["sla_start"] == sh(3, 9)
    assert step.fields["response_by"] == sh(3, 10)  # 60 bmin: already past, breaches now
    assert step.fields["response_state"] == "breached"
    assert step.fields["resolution_by"] == sh(3, 18)
    assert ("escalate", "response") in [(e.kind, e.clock) for e in step.effects]


def test_resolution_breach_raises_priority_without_recomputing(run: Run) -> None:
    responded = ticket(first_response_at=sh(3, 9, 30))
    run.at(sh(3, 9), ticket())
    step = run.at(sh(4, 18, 5), responded)
    escalations = {e.step: e for e in step.effects if e.kind == "escalate"}
    assert set(escalations) == {1, 4}  # L2 and the on-site breach; not VIP, not +50 %
    assert escalations[1].set_values == {"priority": "urgent"}
    assert escalations[1].notify == (7, 8, 9)
    assert step.fields["escalation_level"] == 2
    raised = run.at(sh(4, 18, 6), {**responded, "priority": "urgent"})
    assert not raised.recomputed
    assert raised.fields["resolution_by"] == sh(4, 18)
    l3 = run.at(sh(5, 18), {**responded, "priority": "urgent"})
    assert [(e.step, e.notify) for e in l3.effects] == [(3, (10,))]
    assert l3.fields["escalation_level"] == 3


def test_vip_goes_to_level_three_at_resolution_breach(run: Run) -> None:
    vip = ticket(first_response_at=sh(3, 9, 10), **{"customer.tier": "vip"})
    run.at(sh(3, 9), vip)
    step = run.at(sh(3, 18, 1), vip)  # VIP high: 480 bmin
    assert {e.step for e in step.effects if e.kind == "escalate"} == {1, 2, 4}
    assert step.fields["escalation_level"] == 3


def test_reopen_continue_counts_resolved_time_as_hold(run: Run) -> None:
    answered = {"first_response_at": sh(3, 9, 30)}
    run.at(sh(3, 9), ticket(**answered))
    resolved = run.at(sh(3, 12), ticket(status="resolved", **answered))
    assert resolved.fields["resolution_state"] == "met"
    assert resolved.fields["resolution_bsec"] == 3 * H
    reopened = run.at(sh(4, 12), ticket(status="in_progress", **answered))
    assert reopened.fields["hold_bsec"] == 8 * H  # B(Mon 12:00, Tue 12:00)
    assert reopened.fields["resolution_state"] == "running"
    assert reopened.fields["resolution_by"] == sh(5, 18)
    assert reopened.fields["response_state"] == "met"
    again = run.at(sh(5, 10), ticket(status="resolved", **answered))
    assert again.fields["resolution_bsec"] == 9 * H  # Mon 09–12, Tue 13–18, Wed 09–10


def test_reopen_restart_starts_a_new_resolution_clock(
    sla: CompiledSla, calendars: dict[str, BusinessCalendar]
) -> None:
    spec = sla.spec.model_copy(
        update={
            "policies": tuple(
                p.model_copy(update={"reopen_mode": "restart"}) for p in sla.spec.policies
            )
        }
    )
    run = Run(CompiledSla(spec, "aftersales"), calendars)
    answered = {"first_response_at": sh(3, 9, 30)}
    run.at(sh(3, 9), ticket(**answered))
    run.at(sh(3, 12), ticket(status="resolved", **answered))
    step = run.at(sh(4, 12), ticket(status="in_progress", **answered))
    assert step.fields["sla_start"] == sh(4, 12)
    assert step.fields["hold_bsec"] == 0
    assert step.fields["resolution_by"] == sh(6, 12)
    assert step.fields["response_state"] == "n_a" and step.fields["onsite_state"] == "n_a"


def test_cancel_stops_the_clocks(run: Run) -> None:
    first = run.at(sh(3, 9), ticket())
    step = run.at(sh(3, 10), ticket(status="cancelled"))
    assert step.state.stopped
    assert {w.key_suffix for w in step.wakeups} == {w.key_suffix for w in first.wakeups}
    assert all(w.due_at is None for w in step.wakeups)
    assert not run.at(sh(5, 10), ticket(status="cancelled")).effects


def test_deadlines_over_a_holiday(run: Run) -> None:
    start = datetime(2025, 9, 30, 17, tzinfo=SH)
    step = run.at(start, ticket())
    assert step.fields["response_by"] == datetime(2025, 10, 9, 10, tzinfo=SH)
    assert step.fields["resolution_by"] - start > timedelta(days=9)


def test_a_new_version_of_the_targets_recomputes(run: Run, sla: CompiledSla) -> None:
    run.at(sh(3, 9), ticket())
    policies = []
    for policy in sla.spec.policies:
        targets = {k: dict(v) for k, v in policy.targets.items()}
        targets["high"]["response"] = 60
        policies.append(policy.model_copy(update={"targets": targets}))
    run.sla = CompiledSla(sla.spec.model_copy(update={"policies": tuple(policies)}), "aftersales")
    step = run.at(sh(3, 9, 10), ticket())
    assert step.recomputed
    assert step.fields["response_by"] == sh(3, 10)
    assert not run.at(sh(3, 9, 20), ticket()).recomputed
