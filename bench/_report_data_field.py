"""Generated field-service data on top of bench/_report_data.py's tickets: visits, their items,
parts consumption and ticket activity, with the ticket fields they feed kept consistent.

Per ticket: `visit_count` visits (sequence 1..n; the last one decides the outcome), activity
rows matching `agent_reply_count` (public replies and calls by the handler) and
`transfer_count` (assignments made by a person), calls and remote work carrying `handle_sec`;
then the ticket's handle_sec, customer_msg_count, first_check_in_at, onsite_bsec, onsite_state,
parts_cost and assignee are rewritten from those rows. The same seed gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa
from _report_data_bulk import next_id, update_rows, write_rows  # bench/ is on sys.path

PREFIX = "aftersales__"
AGENTS = [7001 + i for i in range(12)]
ENGINEERS = [7101 + i for i in range(10)]
PARTS = [(i + 1, f"P{i + 1:03d}", 20 + 37 * (i % 9), 1.6) for i in range(24)]  # id, code, cost
VISIT_TYPES = {"repair": "repair", "return_exchange": "repair", "installation": "installation",
               "pm": "pm", "recall": "recall"}  # fmt: skip
REASONS = {"needs_parts": 45, "needs_expert": 15, "customer_absent": 25, "other": 15}
AGENT_KINDS = ("public_reply", "public_reply", "call_in", "call_out")


def load_field(engine: sa.Engine, *, seed: int = 7, batch: int = 10_000) -> None:
    """Users, spare parts, then visits, items, consumption and activity for every ticket,
    `batch` tickets per transaction (flat memory at 1,000,000 tickets)."""
    rng = random.Random(seed)
    meta = sa.MetaData()
    with engine.begin() as conn:
        tables = {name: sa.Table(PREFIX + name, meta, autoload_with=conn) for name in (
            "ticket", "field_visit", "field_visit__items", "part_consumption",
            "ticket_activity", "spare_part")}  # fmt: skip
        _masters(conn, tables["spare_part"])
        visit_base = next_id(conn, tables["field_visit"]) - 1
    ticket = tables["ticket"]
    columns = [ticket.c[n] for n in (
        "id", "ticket_type", "created_at", "first_response_at", "first_resolved_at", "status",
        "visit_count", "agent_reply_count", "transfer_count", "onsite_target_sec")]  # fmt: skip
    last = 0
    while True:
        with engine.begin() as conn:
            tickets = conn.execute(sa.select(*columns).where(ticket.c.id > last)
                                   .order_by(ticket.c.id).limit(batch)).all()  # fmt: skip
            if not tickets:
                return
            rows: dict[str, list[dict[str, Any]]] = {n: [] for n in tables}
            for row in tickets:
                base = visit_base + len(rows["field_visit"])
                rows["ticket"].append(_ticket_rows(_Ticket(*row), rows, rng, base))
            for name in ("field_visit", "field_visit__items", "part_consumption",
                         "ticket_activity"):  # fmt: skip
                write_rows(conn, tables[name], rows[name])
            update_rows(conn, ticket, rows["ticket"])
            visit_base += len(rows["field_visit"])
            last = tickets[-1][0]


class _Ticket:
    """A ticket row with counts as ints and times as aware UTC datetimes (SQLite reads both
    back differently from PostgreSQL)."""

    def __init__(self, *values: Any) -> None:
        (self.id, self.ticket_type, created, responded, resolved, self.status, *counts,
         target) = values  # fmt: skip
        self.created_at, self.first_response_at, self.first_resolved_at = (
            _utc(created), _utc(responded), _utc(resolved))  # fmt: skip
        self.visit_count, self.agent_reply_count, self.transfer_count = (
            int(c or 0) for c in counts)  # fmt: skip
        self.onsite_target_sec = int(target) if target is not None else None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _masters(conn: sa.Connection, spare_part: sa.Table) -> None:
    now = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
    names = ("id", "username", "display_name", "status", "created_at", "updated_at", "version")
    users = sa.table("users", *(sa.column(n) for n in names))
    conn.execute(users.insert(), [
        {"id": uid, "username": f"gen_user_{uid}", "display_name": f"User {uid}",
         "status": "active", "created_at": now, "updated_at": now, "version": 1}
        for uid in AGENTS + ENGINEERS])  # fmt: skip
    conn.execute(spare_part.insert(), [
        {"id": pid, "code": code, "name": f"Part {code}", "barcode": f"BC{code}",
         "standard_cost": cost, "sale_price": round(cost * markup, 2),
         "return_required": pid % 3 == 0, "created_at": now, "updated_at": now, "version": 1}
        for pid, code, cost, markup in PARTS])  # fmt: skip


def _ticket_rows(ticket: Any, rows: dict[str, list[dict[str, Any]]], rng: random.Random,
                 visit_base: int) -> dict[str, Any]:  # fmt: skip
    """Append the ticket's visits, items, consumption and activity; return its update row."""
    assignee = rng.choice(AGENTS) if ticket.status != "new" else None
    activity = _activity(ticket, assignee or rng.choice(AGENTS), rng)
    rows["ticket_activity"].extend(activity)
    visits = _visits(ticket, rng, visit_base)
    rows["field_visit"].extend(visits)
    cost = 0.0
    for visit in visits:
        used = _consumption(visit, rng) if visit["status"] == "completed" else []
        rows["part_consumption"].extend(used)
        rows["field_visit__items"].extend(_items(visit, used))
        cost += sum(row["cost"] for row in used)
    arrivals = [v["check_in_at"] for v in visits if v["check_in_at"] is not None]
    first = min(arrivals) if arrivals else None
    target = ticket.onsite_target_sec or 8 * 3600  # the base data has no on-site target
    onsite = int((first - ticket.created_at).total_seconds() * 0.4) if first else None
    state = (None if first is None else "met" if onsite is not None and onsite <= target
             else "breached")  # fmt: skip
    return {
        "id": ticket.id, "assignee": assignee, "first_check_in_at": first, "onsite_bsec": onsite,
        "onsite_state": state, "parts_cost": round(cost, 2),
        "handle_sec": sum(row["handle_sec"] or 0 for row in activity),
        "customer_msg_count": sum(row["kind"] == "customer_msg" for row in activity),
    }  # fmt: skip


def _stamp(at: dt.datetime) -> dict[str, Any]:
    return {"created_at": at, "updated_at": at, "version": 1}


def _activity(ticket: Any, assignee: int, rng: random.Random) -> list[dict[str, Any]]:
    start = ticket.first_response_at or ticket.created_at
    out = [_act(ticket.id, ticket.created_at, None, "assignment", None)]
    for n in range(ticket.agent_reply_count or 0):
        kind = rng.choice(AGENT_KINDS)
        handle = rng.randint(60, 1800) if kind != "public_reply" else None
        out.append(_act(ticket.id, start + dt.timedelta(hours=5 * n), assignee, kind, handle))
    for n in range(ticket.transfer_count or 0):
        at = start + dt.timedelta(minutes=30 + 7 * n)
        out.append(_act(ticket.id, at, rng.choice(AGENTS), "assignment", None))
    if rng.random() < 0.15:
        at = start + dt.timedelta(hours=2)
        out.append(_act(ticket.id, at, assignee, "remote_work", rng.randint(300, 5400)))
    for n in range(rng.choice([0, 0, 1, 1, 2, 3])):
        at = ticket.created_at + dt.timedelta(minutes=1 + 97 * n)
        out.append(_act(ticket.id, at, None, "customer_msg", None))
    return out


def _act(ticket: int, at: dt.datetime, actor: int | None, kind: str,
         handle: int | None) -> dict[str, Any]:  # fmt: skip
    internal = kind in ("assignment", "remote_work")
    return {**_stamp(at), "ticket": ticket, "at": at, "actor": actor, "kind": kind,
            "visibility": "internal" if internal else "public", "handle_sec": handle,
            "body": None if kind == "assignment" else f"{kind} on {ticket}"}  # fmt: skip


def _visits(ticket: Any, rng: random.Random, base: int) -> list[dict[str, Any]]:
    count = ticket.visit_count or 0
    visit_type = VISIT_TYPES.get(ticket.ticket_type, "inspection")
    resolved = ticket.first_resolved_at is not None
    out: list[dict[str, Any]] = []
    at = ticket.created_at + dt.timedelta(minutes=rng.randint(60, 2880))
    for sequence in range(1, count + 1):
        last = sequence == count
        status = _visit_status(last, resolved, rng)
        visit = _visit(ticket, base + len(out) + 1, sequence, visit_type, status, at, rng)
        visit["is_revisit_of"] = out[-1]["id"] if out else None  # sequence follows this chain
        out.append(visit)
        at += dt.timedelta(days=rng.randint(1, 5), minutes=rng.randint(0, 600))
    return out


def _visit_status(last: bool, resolved: bool, rng: random.Random) -> str:
    if not last:
        return "incomplete"
    if resolved:
        return "completed" if rng.random() < 0.92 else "incomplete"
    return rng.choice(["completed", "incomplete", "checked_in", "dispatched", "cancelled"])


def _visit(ticket: Any, vid: int, sequence: int, visit_type: str, status: str,
           at: dt.datetime, rng: random.Random) -> dict[str, Any]:  # fmt: skip
    done = status in ("completed", "incomplete")
    arrived = done or status == "checked_in"
    labour = rng.randint(20, 240)
    result = None
    if status == "completed":
        result = rng.choices(["fixed", "temporary", "not_fixed"], [80, 12, 8])[0]
    elif status == "incomplete":
        result = "not_fixed"
    reason = rng.choices(list(REASONS), list(REASONS.values()))[0] if status == "incomplete" \
        else None  # fmt: skip
    return {
        **_stamp(at), "id": vid, "number": f"FV-{at:%Y%m}-{vid:07d}", "ticket": ticket.id,
        "visit_type": visit_type, "sequence": sequence, "engineer": rng.choice(ENGINEERS),
        "scheduled_start": at, "scheduled_end": at + dt.timedelta(hours=2), "status": status,
        "check_in_at": at if arrived else None,
        "check_out_at": at + dt.timedelta(minutes=labour) if done else None,
        "labour_min": labour if done else None, "travel_min": rng.randint(10, 120),
        "travel_km": round(rng.uniform(1, 60), 1), "result": result,
        "incomplete_reason": reason, "check_in_distance_m": rng.randint(5, 900) if arrived
        else None, "signature_waived": False,
    }  # fmt: skip


def _consumption(visit: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    if visit["visit_type"] != "repair" or rng.random() < 0.45:
        return []
    out = []
    for n in range(rng.choice([1, 1, 1, 2])):
        pid, _code, cost, markup = rng.choice(PARTS)
        qty = rng.choice([1, 1, 1, 2])
        at = visit["check_in_at"] + dt.timedelta(minutes=10 + n)
        out.append({
            **_stamp(at), "visit": visit["id"], "spare_part": pid, "qty": qty,
            "unit_cost": cost, "unit_price": round(cost * markup, 2), "cost": qty * cost,
            "chargeable": rng.random() < 0.4, "posted_at": at, "compat_warning": False,
            "return_status": "pending" if pid % 3 == 0 else "n_a"})  # fmt: skip
    return out


def _items(visit: dict[str, Any], used: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if visit["status"] != "completed":
        return []
    hours = round(visit["labour_min"] / 60, 2)
    lines = [("labour", None, hours, 200.0), ("travel", None, 1, 100.0)]
    lines += [("part", row["spare_part"], row["qty"], row["unit_price"]) for row in used]
    return [
        {"parent_id": visit["id"], "position": n, "item_type": kind, "spare_part": part,
         "qty": qty, "unit_price": price, "chargeable": False, "amount": 0}
        for n, (kind, part, qty, price) in enumerate(lines)
    ]  # fmt: skip


__all__ = ["AGENTS", "ENGINEERS", "load_field"]
