"""The writes of one ticket after intake (§5 "handling"): assignment, first response (FRT
log-normal, median 35 bmin, VIP 10), 30 % pause 0.5–5 business days, visits for field work
(22 % of first visits incomplete), resolution (median 10 bh), 6 % reopen, auto-close after
7 days, 3 % cancelled. Each write is an SLA event and an activity row."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from demo.aftersales.catalog import RESOLUTION_NOTES
from demo.aftersales.people import Person
from demo.aftersales.replay import Event, replay
from demo.aftersales.signals import reopen_rate, stress
from demo.aftersales.tickets import Context, Generated
from engine.flows.calendar import BusinessCalendar, add_business
from engine.flows.sla import advance

BH = 3600.0
FIELD_TYPES = ("installation", "pm")


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return math.exp(rng.gauss(math.log(median), sigma))


class _Log:
    """Collects the ticket's events (SLA writes) and activity rows."""

    def __init__(self, g: Generated) -> None:
        self.g, self.status = g, "new"
        self.events: list[Event] = []
        self.counts = {"agent_reply_count": 0, "customer_msg_count": 0, "handle_sec": 0}

    def act(
        self,
        at: datetime,
        kind: str,
        actor: int | None,
        *,
        body: str | None = None,
        handle: int | None = None,
        visibility: str = "public",
    ) -> None:
        row = {"_at": at, "at": at, "kind": kind, "actor": actor, "visibility": visibility}
        if body is not None:
            row["body"] = body
        if handle is not None:
            row["handle_sec"] = handle
            self.counts["handle_sec"] += handle
        if kind == "public_reply" or kind == "call_out":
            self.counts["agent_reply_count"] += 1
        if kind == "customer_msg":
            self.counts["customer_msg_count"] += 1
        self.g.activities.append(row)

    def move(self, at: datetime, status: str, actor: int | None, **changes: Any) -> None:
        self.g.activities.append(
            {
                "_at": at,
                "at": at,
                "kind": "status_change",
                "actor": actor,
                "visibility": "internal",
                "from_status": self.status,
                "to_status": status,
            }
        )
        self.status = status
        self.events.append((at, {"status": status, **changes}))


def _assignee(ctx: Context, g: Generated, rng: random.Random) -> Person:
    members = (
        ctx.people.team_members.get(g.values["team_code"])
        or ctx.people.team_members["SERVICE-DESK"]
    )
    return rng.choice(members)


def _engineer(ctx: Context, region: str) -> Person:
    return next(p for p in ctx.people.of_role("engineer") if p.region == region)


def live(ctx: Context, g: Generated, rng: random.Random, created: datetime) -> None:
    """Fill `g` with the ticket's timeline, SLA fields and counters."""
    v, log = g.values, _Log(g)
    who = _assignee(ctx, g, rng)
    v.update(
        team=ctx.people.teams[g.values["team_code"]]
        if g.values["team_code"] in ctx.people.teams
        else None,
        assignee=who.user_id,
        assignee_supervisor=who.supervisor,
        assignment_mode="rule",
        in_pool=False,
    )
    first = advance(
        ctx.sla,
        None,
        {**v, "status": "new", **g.related},
        now=created,
        started_at=created,
        calendars=ctx.calendars,
    )
    cal = ctx.calendars[first.state.calendar]
    phone = v["channel"] == "phone"
    if phone:
        log.act(created, "call_in", who.user_id, handle=rng.randint(120, 900))
    else:
        log.act(created, "customer_msg", None, body=v["description"])
    log.events.append((created, {"status": "new"}))
    log.move(created, "assigned", None)
    vip = g.customer is not None and g.customer.tier == "vip"
    slow = who.username == "a07"  # §5 signal 4: agent A-07 is slow
    slower = stress(v["_region"], v["_day"])
    frt = _lognormal(rng, (10 if vip else 35) * 60 * (2 if slow else 1) * slower, 1.0)
    t = add_business(cal, created, frt)
    v["first_response_at"] = t
    if phone:
        log.act(t, "call_out", who.user_id, handle=rng.randint(180, 1500) * (2 if slow else 1))
    else:
        log.act(t, "public_reply", who.user_id, body="您好，已收到您的问题，正在为您处理。")
    log.move(t, "in_progress", who.user_id, first_response_at=t)
    if rng.random() < 0.03:
        reason = rng.choice(["cancelled_withdrawn", "cancelled_duplicate"])
        t2 = t + timedelta(minutes=rng.randint(5, 600))
        log.move(t2, "cancelled", who.user_id, close_reason=reason, closed_at=t2)
        v.update(close_reason=reason, closed_at=t2)
        return _finish(ctx, g, log, rng)
    target = _lognormal(rng, 10 * BH * slower, 0.9)
    if rng.random() < 0.3:  # request info, the customer answers 0.5–5 business days later
        t = add_business(cal, t, target * rng.uniform(0.1, 0.4))
        log.act(t, "public_reply", who.user_id, body="请补充设备照片和报警代码。")
        log.move(t, "waiting_customer", who.user_id)
        t = add_business(cal, t, rng.uniform(0.5, 5) * 8 * BH)
        log.act(t, "customer_msg", None, body="已补充信息。")
        log.move(t, "in_progress", None)
    if v["device"] and (
        v["ticket_type"] in FIELD_TYPES or (v["ticket_type"] == "repair" and rng.random() < 0.6)
    ):
        t, resolver = _visits(ctx, g, log, rng, cal, t)
        code = "part_replaced" if rng.random() < 0.35 else "onsite_fixed"
    else:
        if rng.random() < 0.4:
            log.act(
                t, "remote_work", who.user_id, handle=rng.randint(300, 2400), visibility="internal"
            )
        t, resolver = add_business(cal, t, target * rng.uniform(0.3, 1.0)), who.user_id
        code = _remote_code(v["ticket_type"], rng)
    _resolve(g, log, t, resolver, code, first=True)
    reopens = reopen_rate(v["_model"], v.get("fault_code"), v["_day"])
    if rng.random() < reopens:  # the customer writes back: reopen (§3.1 step 5)
        t = t + timedelta(hours=rng.uniform(4, 72))
        log.act(t, "customer_msg", None, body="问题又出现了，还是不行。")
        log.move(t, "in_progress", None)
        v["reopen_count"] = 1
        t = add_business(cal, t, _lognormal(rng, 4 * BH, 0.8))
        _resolve(g, log, t, resolver, code, first=False)
    close = t + (timedelta(days=7) if rng.random() < 0.7 else timedelta(hours=rng.uniform(2, 48)))
    reason = "auto_inactive" if close - t >= timedelta(days=7) else "customer_confirmed"
    log.move(close, "closed", None, closed_at=close, close_reason=reason)
    if close <= ctx.end:
        v.update(closed_at=close, close_reason=reason)
    _finish(ctx, g, log, rng)


def _remote_code(kind: str, rng: random.Random) -> str:
    if kind in ("consultation", "feedback", "complaint"):
        return "answered"
    return rng.choices(
        ["remote_fixed", "answered", "user_error", "no_fault_found", "unit_replaced"],
        weights=[55, 15, 15, 10, 5],
    )[0]


def _resolve(
    g: Generated, log: _Log, t: datetime, resolver: int, code: str, *, first: bool
) -> None:
    v = g.values
    fields = {
        "resolved_at": t,
        "resolved_by": resolver,
        "resolution_code": code,
        "resolution_notes": RESOLUTION_NOTES[code],
    }
    if v["ticket_type"] == "repair":
        fields["root_cause"] = "部件老化" if code == "part_replaced" else "现场检查确认"
    if v["ticket_type"] in ("repair", "tech_support") and not v.get("fault_code"):
        fields["fault_code"] = "G00"
    log.move(t, "resolved", resolver, **fields)
    log.g.activities[-1]["_resolve"] = fields  # applied only if it happens before the end
    if first:
        log.g.activities[-1]["_first"] = True


def _visits(
    ctx: Context, g: Generated, log: _Log, rng: random.Random, cal: BusinessCalendar, t: datetime
) -> tuple[datetime, int]:
    """One visit, or an incomplete one and its revisit; the last check-out and the engineer."""
    v = g.values
    engineer = _engineer(ctx, v["_region"])
    kind = v["ticket_type"] if v["ticket_type"] in FIELD_TYPES else "repair"
    outcomes = (
        ["fixed"]
        if rng.random() >= 0.22
        else [
            rng.choices(["needs_parts", "needs_expert", "customer_absent"], weights=[15, 4, 3])[0],
            "fixed",
        ]
    )
    previous = None
    for n, outcome in enumerate(outcomes):
        log.move(t, "onsite", engineer.user_id)
        check_in = add_business(cal, t, rng.uniform(1, 12) * BH)
        check_out = check_in + timedelta(minutes=rng.randint(30, 180))
        if n == 0:
            log.events.append((check_in, {"first_check_in_at": check_in}))
            v["first_check_in_at"] = check_in
        visit = {
            "_at": t,
            "visit_type": kind,
            "engineer": engineer.user_id,
            "scheduled_start": check_in - timedelta(minutes=30),
            "scheduled_end": check_in + timedelta(hours=2),
            "accepted_at": t,
            "travel_start_at": check_in - timedelta(minutes=40),
            "check_in_at": check_in,
            "check_out_at": check_out,
            "fault_found": "现场检查",
            "action_taken": "检修处理",
            "check_in_distance_m": rng.randint(20, 450),
            "_previous": previous,
            "status": "completed" if outcome == "fixed" else "incomplete",
            "result": "fixed" if outcome == "fixed" else "not_fixed",
            "incomplete_reason": None if outcome == "fixed" else outcome,
        }
        g.visits.append(visit)
        previous = len(g.visits) - 1
        t = check_out
        if outcome == "needs_parts":
            log.move(t, "waiting_parts", engineer.user_id)
            t = add_business(cal, t, rng.uniform(1, 3) * 8 * BH)
    return t, engineer.user_id


def _finish(ctx: Context, g: Generated, log: _Log, rng: random.Random) -> None:
    """Keep what happened by the end, replay the SLA, set the counters."""
    v = g.values
    g.activities = [a for a in g.activities if a["_at"] <= ctx.end]
    g.visits = [x for x in g.visits if x["_at"] <= ctx.end]
    for visit in g.visits:
        if visit["check_in_at"] > ctx.end:
            visit.update(
                status="accepted",
                check_in_at=None,
                check_out_at=None,
                result=None,
                incomplete_reason=None,
                fault_found=None,
                action_taken=None,
            )
    for row in g.activities:
        if "_resolve" in row:
            v.update(row.pop("_resolve"))
            if row.pop("_first", False):
                v["first_resolved_at"] = v["resolved_at"]
    if v.get("first_check_in_at") and v["first_check_in_at"] > ctx.end:
        v["first_check_in_at"] = None
    if v.get("first_response_at") and v["first_response_at"] > ctx.end:
        v["first_response_at"] = None
    state = {"status": "new"}
    for _, changes in log.events:
        if _ <= ctx.end:
            state.update(changes)
    v["status"] = state["status"]
    if v["status"] in (
        "new",
        "assigned",
        "in_progress",
        "waiting_customer",
        "waiting_parts",
        "onsite",
    ):
        for key in (
            "resolved_at",
            "resolved_by",
            "resolution_code",
            "resolution_notes",
            "root_cause",
            "closed_at",
            "close_reason",
        ):
            v[key] = None
        if v.get("reopen_count"):
            v["resolved_at"] = None
    base = _intake_values(v)
    events = sorted(log.events, key=lambda e: e[0])
    g.statuses = [(at, str(ch["status"])) for at, ch in events if "status" in ch and at <= ctx.end]
    fields, seen = replay(
        ctx.sla,
        ctx.calendars,
        base,
        g.related,
        events,
        end=ctx.end,
        observe=v.get("first_resolved_at"),
    )
    v.update(fields)
    v["priority"] = base.get("priority", v["priority"])  # an L2 escalation raises it
    if v.get("first_resolved_at"):  # B(sla_start, first resolved) − the hold at that moment
        v["first_resolution_bsec"] = seen.get("resolution_bsec")
    v.update(log.counts)
    v["visit_count"] = len(g.visits)
    v["transfer_count"] = 1 if rng.random() < 0.08 else 0


def _intake_values(v: dict[str, Any]) -> dict[str, Any]:
    """The values at creation: what the timeline writes starts blank."""
    base = {k: x for k, x in v.items() if not k.startswith("_") and k != "team_code"}
    base.update(status="new", first_response_at=None, first_check_in_at=None)
    return base


__all__ = ["live"]
