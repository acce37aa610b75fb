"""Generated operations data for the parts, PM and product KPIs (AFTERSALES.md §4 P3, P4, M1,
I3, M3) on top of bench/_report_data.py: warehouses, parts, transfer requests, PM plans and
occurrences, visits with parts consumption, improvement requests. Rows are written straight
to the form tables (as _report_data does for tickets), with the stored formulas (lead_time_sec,
on_time) computed here as the form engine would. The same seed gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import _report_data as base  # bench/ is on sys.path (script or test conftest)
import sqlalchemy as sa
from _report_data_bulk import batched, next_id, write_rows
from _report_data_sql import median, ranked

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STAMP = {"created_at": NOW, "updated_at": NOW, "version": 1}
REQUEST_TYPES = {"for_ticket": 60, "replenish": 25, "return_unused": 10, "return_defective": 5}
RETURN_STATUS = {"n_a": 30, "pending": 10, "returned": 50, "overdue": 10}
IR_STATUS = {"new": 10, "triage": 10, "investigating": 15, "root_caused": 10, "fixing": 10,
             "released": 15, "verifying": 10, "closed": 15, "rejected": 5}  # fmt: skip
IR_SOURCES = {"manual": 40, "threshold_rule": 25, "anomaly_rule": 15, "complaint": 15, "survey": 5}
RELEASED = ("released", "verifying", "closed")
ENGINEERS = 6
WAREHOUSES = 8
PARTS = 20


def install(engine: sa.Engine) -> None:
    base.install(engine)


def load(engine: sa.Engine, tickets: int, *, seed: int = 42) -> None:
    """The base data (customers, devices, `tickets` tickets), then the operations rows."""
    base.load(engine, tickets, seed=seed)
    load_ops(engine, tickets, seed=seed)


def load_ops(engine: sa.Engine, tickets: int, *, seed: int = 42) -> None:
    """The operations rows over tickets 1..`tickets`, in batches; visits get ids after any
    already there (bench/_report_data_field.py's), spare parts only the ids not there."""
    rng = random.Random(seed + 7)
    meta = sa.MetaData()
    with engine.begin() as conn:

        def table(form: str) -> sa.Table:
            return sa.Table(f"aftersales__{form}", meta, autoload_with=conn)

        users = _users(conn)
        conn.execute(table("warehouse").insert(), [
            {**STAMP, "id": w, "code": f"WH{w:02d}", "name": f"Warehouse {w}",
             "wh_type": "central" if w == 1 else "regional", "keeper": users[0],
             "region": None if w == 1 else list(base.REGIONS)[(w - 2) % 7]}
            for w in range(1, WAREHOUSES + 1)])  # fmt: skip
        parts = table("spare_part")
        there = set(conn.execute(sa.select(parts.c.id)).scalars())
        write_rows(conn, parts, (
            {**STAMP, "id": p, "code": f"P{p:03d}", "name": f"Part {p}", "barcode": f"BC{p:05d}",
             "standard_cost": 50 + 10 * p, "sale_price": 80 + 16 * p, "return_required": p % 2 == 0}
            for p in range(1, PARTS + 1) if p not in there))  # fmt: skip
        write_rows(conn, table("transfer_request"), _transfers(tickets, users, rng))
        plans, occurrences = _pm(tickets, rng)
        write_rows(conn, table("pm_plan"), plans)
        write_rows(conn, table("pm_occurrence"), occurrences)
        visit, consumption = table("field_visit"), table("part_consumption")
        first = next_id(conn, visit)
        for chunk in batched(_visits(tickets, users, rng, first)):
            write_rows(conn, visit, (v for v, _ in chunk))
            write_rows(conn, consumption, (c for _, used in chunk for c in used))
        write_rows(conn, table("improvement_request"), _requests(tickets, rng))


def _users(conn: sa.Connection) -> list[int]:
    """Engineers as real users (user fields reference the users table)."""
    from engine.storage.tables import users

    first = next_id(conn, users) - 1
    ids = [first + 1 + i for i in range(ENGINEERS)]
    conn.execute(users.insert(), [
        {"id": u, "username": f"ops_engineer_{u}", "display_name": f"Engineer {u}",
         "created_at": NOW, "updated_at": NOW} for u in ids])  # fmt: skip
    return ids


def _day(rng: random.Random) -> dt.datetime:
    return base.START + dt.timedelta(seconds=rng.randint(0, base.SPAN - 1))


def _transfers(tickets: int, users: list[int], rng: random.Random) -> Iterator[dict[str, Any]]:
    for n in range(1, max(300, tickets // 10) + 1):
        kind = rng.choices(list(REQUEST_TYPES), weights=list(REQUEST_TYPES.values()))[0]
        submitted = _day(rng)
        lead = dt.timedelta(seconds=int(rng.lognormvariate(11, 0.8)))
        received: dt.datetime | None = submitted + lead
        status = rng.choices(["received", "closed", "shipped", "cancelled"], [40, 40, 15, 5])[0]
        if status in ("shipped", "cancelled"):
            received = None
        source = rng.randint(1, WAREHOUSES)
        yield {
            **STAMP, "id": n, "number": f"TR-{submitted:%Y%m}-{n:05d}", "request_type": kind,
            "ticket": rng.randint(1, tickets) if kind == "for_ticket" else None,
            "requester": rng.choice(users), "from_warehouse": source,
            "to_warehouse": source % WAREHOUSES + 1, "status": status, "submitted_at": submitted,
            "received_at": received,
            "lead_time_sec": int((received - submitted).total_seconds()) if received else None,
        }  # fmt: skip


def _pm(tickets: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Quarterly plans started in 2024 (one per 250 tickets, at least 40), for 1-3 devices
    each; one occurrence per device and quarter through 2025."""
    plans: list[dict[str, Any]] = []
    occurrences: list[dict[str, Any]] = []
    devices = base.devices_for(tickets)
    for p in range(1, max(40, tickets // 250) + 1):
        start = dt.date(2024, 1 + p % 12, 1 + p % 28)
        plans.append({
            **STAMP, "id": p, "number": f"PM-2024-{p:04d}", "customer": p, "active": True,
            "frequency": 3, "frequency_unit": "month", "horizon_days": 14, "grace_days": 3,
            "start_date": start, "end_date": dt.date(2026, 6, 30),
            "schedule_mode": "fixed"})  # fmt: skip
        for device in rng.sample(range(1, devices + 1), rng.randint(1, 3)):
            for k in range(1, 9):
                month = start.month - 1 + 3 * k
                due = dt.date(start.year + month // 12, 1 + month % 12, start.day)
                if due.year != 2025:
                    continue
                occurrences.append(_occurrence(len(occurrences) + 1, p, device, due, k, rng))
    return plans, occurrences


def _occurrence(n: int, plan: int, device: int, due: dt.date, k: int,
                rng: random.Random) -> dict[str, Any]:  # fmt: skip
    status = rng.choices(["done", "missed", "skipped", "generated"], [88, 5, 2, 5])[0]
    done = due + dt.timedelta(days=rng.randint(-5, 6)) if status == "done" else None
    return {
        **STAMP, "id": n, "plan": plan, "device": device, "due_date": due, "seq": k,
        "status": status, "done_date": done, "mode": "fixed",
        "on_time": None if done is None else done <= due + dt.timedelta(days=3),
        "generate_on": due - dt.timedelta(days=14), "missed_on": due + dt.timedelta(days=4),
    }  # fmt: skip


def _visits(tickets: int, users: list[int], rng: random.Random,
            first: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:  # fmt: skip
    """(visit, its parts consumption) pairs; visit ids from `first`."""
    for v in range(first, first + max(400, tickets // 5)):
        start = _day(rng)
        visit = {**STAMP, "id": v, "number": f"FV-{start:%Y%m}-{v:06d}",
                 "ticket": rng.randint(1, tickets), "visit_type": "repair",
                 "engineer": rng.choice(users), "status": "completed",
                 "scheduled_start": start, "check_out_at": start}  # fmt: skip
        used = []
        for _ in range(rng.choice([0, 1, 1, 2])):
            status = rng.choices(list(RETURN_STATUS), weights=list(RETURN_STATUS.values()))[0]
            due = None if status == "n_a" else (start + dt.timedelta(days=7)).date()
            part = rng.randint(1, PARTS)
            used.append({**STAMP, "visit": v, "qty": 1, "spare_part": part, "posted_at": start,
                         "return_status": status, "return_due": due})  # fmt: skip
        yield visit, used


def _requests(tickets: int, rng: random.Random) -> list[dict[str, Any]]:
    """One improvement request per 1,000 tickets, at least 80."""
    rows = []
    for n in range(1, max(80, tickets // 1000) + 1):
        created = _day(rng)
        status = rng.choices(list(IR_STATUS), weights=list(IR_STATUS.values()))[0]
        released = created.date() + dt.timedelta(days=rng.randint(10, 120))
        rows.append({
            **STAMP, "created_at": created, "id": n, "code": f"IR-2025-{n:04d}",
            "name": f"Improvement {n}", "status": status,
            "source": rng.choices(list(IR_SOURCES), weights=list(IR_SOURCES.values()))[0],
            "released_at": released if status in RELEASED else None})  # fmt: skip
    return rows


# --- the KPIs written by hand ------------------------------------------------------------------


TRANSFERS = ("FROM aftersales__transfer_request r LEFT JOIN aftersales__warehouse w ON w.id = "
             "r.from_warehouse AND w.deleted_at IS NULL WHERE r.deleted_at IS NULL AND "
             "r.request_type = 'for_ticket' AND r.submitted_at IS NOT NULL AND r.received_at IS "
             "NOT NULL AND r.status <> 'cancelled' AND r.received_at >= :low AND "
             "r.received_at < :high")  # fmt: skip


def hand_sql(key: str) -> str:
    """Hand SQL of report `key`: (:low, :high) bound an instant period, (:first, :last) a
    date period. p4 and m3 select raw rows whose medians the caller computes."""
    if key == "p4_transfer_lead_time":
        return f"SELECT w.code, r.lead_time_sec {TRANSFERS} ORDER BY 1, 2"
    if key == "m1_pm_compliance":
        on_time = "SUM(CASE WHEN o.on_time THEN 1 ELSE 0 END)"
        return (f"SELECT d.region, COUNT(*), {on_time}, SUM(CASE WHEN o.status = 'missed' THEN 1"
                f" ELSE 0 END), CAST({on_time} AS FLOAT) / COUNT(*) FROM aftersales__pm_occurrence"
                " o LEFT JOIN aftersales__device d ON d.id = o.device AND d.deleted_at IS NULL "
                "WHERE o.deleted_at IS NULL AND o.status <> 'skipped' AND o.due_date >= :first "
                "AND o.due_date <= :last GROUP BY d.region ORDER BY d.region")  # fmt: skip
    if key == "p3_defective_returns":
        returned = "SUM(CASE WHEN pc.return_status = 'returned' THEN 1 ELSE 0 END)"
        return (f"SELECT v.engineer, COUNT(*), {returned}, CAST({returned} AS FLOAT) / COUNT(*) "
                "FROM aftersales__part_consumption pc LEFT JOIN aftersales__field_visit v ON "
                "v.id = pc.visit AND v.deleted_at IS NULL WHERE pc.deleted_at IS NULL AND "
                "pc.return_status IN ('pending', 'returned', 'overdue') AND pc.return_due IS NOT "
                "NULL AND pc.return_due >= :first AND pc.return_due <= :last "
                "GROUP BY v.engineer ORDER BY v.engineer")  # fmt: skip
    if key == "i3_feedback":
        return (f"SELECT m.product_line, COUNT(*) {base.FROM} LEFT JOIN aftersales__product_model"
                f" m ON m.id = t.product_model AND m.deleted_at IS NULL WHERE {base.POP} AND "
                f"{base.IN_PERIOD} AND t.ticket_type = 'feedback' GROUP BY m.product_line "
                "ORDER BY m.product_line")  # fmt: skip
    if key == "m3_improvement_requests":
        return ("SELECT r.status, r.source, r.created_at, r.released_at FROM "
                "aftersales__improvement_request r WHERE r.deleted_at IS NULL AND "
                "r.created_at >= :low AND r.created_at < :high ORDER BY 1, 2")  # fmt: skip
    raise KeyError(key)


def bench_sql(dialect: str) -> dict[str, tuple[str, str]]:
    """Every operations KPI as (event date, one statement): p4's and m3's medians in SQL."""
    out = {key: (DATE_FIELDS[key], hand_sql(key)) for key in KPI_KEYS}
    lead = ranked(dialect, select="w.code", value="r.lead_time_sec", group="w.code",
                  source=TRANSFERS)  # fmt: skip
    out["p4_transfer_lead_time"] = (DATE_FIELDS["p4_transfer_lead_time"], (
        f"SELECT t.code, COUNT(*), {median(dialect)} FROM {lead} GROUP BY t.code "
        "ORDER BY t.code"))  # fmt: skip
    if dialect == "postgresql":
        days = ("TRUNC(EXTRACT(EPOCH FROM (CAST(r.released_at AS TIMESTAMP) AT TIME ZONE 'UTC' "
                "- r.created_at)) / 86400)")  # fmt: skip
    else:
        days = "(strftime('%s', r.released_at) - strftime('%s', r.created_at)) / 86400"
    released = ranked(dialect, select="r.status, r.source", value=days, group="r.status, r.source",
                      source="FROM aftersales__improvement_request r WHERE r.deleted_at IS NULL "
                      "AND r.created_at >= :low AND r.created_at < :high")  # fmt: skip
    out["m3_improvement_requests"] = (DATE_FIELDS["m3_improvement_requests"], (
        f"SELECT t.status, t.source, COUNT(*), {median(dialect)} FROM {released} "
        "GROUP BY t.status, t.source ORDER BY t.status, t.source"))  # fmt: skip
    return out


KPI_KEYS = ["p3_defective_returns", "p4_transfer_lead_time", "m1_pm_compliance", "i3_feedback",
            "m3_improvement_requests"]  # fmt: skip
DATE_FIELDS = {"p3_defective_returns": "return_due", "p4_transfer_lead_time": "received_at",
               "m1_pm_compliance": "due_date", "i3_feedback": "created_at",
               "m3_improvement_requests": "created_at"}  # fmt: skip

__all__ = ["DATE_FIELDS", "KPI_KEYS", "bench_sql", "hand_sql", "install", "load", "load_ops"]
