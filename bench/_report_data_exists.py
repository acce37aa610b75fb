"""Generated data and hand-written SQL for the KPIs that test for other rows (AFTERSALES.md §4
E6 exact, Q8, M1 coverage, M2, P6), on top of bench/_report_data.py tickets and
bench/_report_data_field.py visits: service contracts (devices linked to them), PM plans with
their device rows, and hand-made edge tickets (region "edge", model EDGE-1) around the 30-day
windows. The same seed gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import _report_data as base  # bench/ is on sys.path (script or test conftest)
import sqlalchemy as sa

STAMP = {"created_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "updated_at":
         dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "version": 1}  # fmt: skip
CONTRACT_STATUS = {"active": 45, "expired": 20, "renewed": 20, "terminated": 5, "draft": 10}
MANAGERS = (None, 7001, 7002, 7003)  # generated agents (bench/_report_data_field.py)
R = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)  # the edge tickets' resolution instant
EDGE_MODEL, EDGE_CUSTOMER, EDGE_DEVICE = 99, 99_999, 990_000
EDGE_TICKET = EDGE_VISIT = 9_900_000
NOT_CONFIRMED = base.NOT_CONFIRMED
CONFIRMED = (
    "{o}.ticket_type IN ('repair', 'return_exchange') AND COALESCE({o}.status, '') <> "
    f"'cancelled' AND COALESCE({{o}}.resolution_code, '') NOT IN {NOT_CONFIRMED}"
)


def load_contracts(engine: sa.Engine, *, tickets: int, seed: int = 11) -> None:
    """Contracts (status, end dates through 2025), devices linked to them, PM plans with
    device rows; customers get account managers."""
    rng = random.Random(seed)
    devices, customers = base.devices_for(tickets), max(40, tickets // 25)
    meta = sa.MetaData()
    with engine.begin() as conn:

        def table(name: str) -> sa.Table:
            return sa.Table(f"aftersales__{name}", meta, autoload_with=conn)

        contracts = [{
            **STAMP, "id": n, "number": f"SC-{n:05d}", "customer": rng.randint(1, customers),
            "contract_type": rng.choice(["amc", "extended_warranty", "per_call"]),
            "start_date": dt.date(2024, 1 + n % 12, 1), "end_date": dt.date(2025, 1, 1)
            + dt.timedelta(days=rng.randint(0, 364)), "amount": 1000 + n,
            "status": rng.choices(list(CONTRACT_STATUS), list(CONTRACT_STATUS.values()))[0],
        } for n in range(1, 1 + max(60, devices // 10))]  # fmt: skip
        conn.execute(table("service_contract").insert(), contracts)
        device = table("device")
        for d in range(1, devices + 1):
            contract = rng.choice(contracts)["id"] if rng.random() < 0.5 else None
            status = "active" if rng.random() < 0.9 else "returned"
            conn.execute(device.update().where(device.c.id == d).values(
                contract=contract, status=status))  # fmt: skip
        customer = table("customer")
        for c in range(1, customers + 1):
            conn.execute(customer.update().where(customer.c.id == c).values(
                account_manager=rng.choice(MANAGERS)))  # fmt: skip
        plans = [{**STAMP, "id": 500 + p, "number": f"PM-X-{p:04d}", "customer": p,
                  "active": rng.random() < 0.7, "frequency": 3, "frequency_unit": "month",
                  "horizon_days": 14, "grace_days": 3, "start_date": dt.date(2024, 1, 1),
                  "schedule_mode": "fixed", "deleted_at": STAMP["created_at"] if p == 1 else None}
                 for p in range(1, 31)]  # fmt: skip
        conn.execute(table("pm_plan").insert(), plans)
        rows = [{"parent_id": plan["id"], "position": k, "device": rng.randint(1, devices)}
                for plan in plans for k in range(rng.randint(1, 8))]  # fmt: skip
        conn.execute(table("pm_plan__devices").insert(), rows)


def _edge_ticket(n: int, device: int, created: dt.datetime, resolved: dt.datetime | None,
                 **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"id": EDGE_TICKET + n, "number": f"WO-EDGE-{n:03d}", "ticket_type": "repair",
            "customer": EDGE_CUSTOMER, "product_model": EDGE_MODEL, "device": device,
            "region": "edge", "status": "resolved" if resolved else "in_progress",
            "resolution_code": "onsite_fixed" if resolved else None, "resolved_at": resolved,
            "first_resolved_at": resolved, "visit_count": 1, "created_at": created,
            "updated_at": created, "version": 1, "deleted_at": None, **extra}  # fmt: skip


def edge_tickets() -> list[dict[str, Any]]:
    """Devices E1..E6 (EDGE_DEVICE + k) around R; expected results in tests/…/test_kpi_exists."""
    day = dt.timedelta(days=1)
    before = R - day
    return [
        _edge_ticket(1, EDGE_DEVICE + 1, before, R),  # a1: a2 comes exactly 30 d later
        _edge_ticket(2, EDGE_DEVICE + 1, R + 30 * day, None, visit_count=0),
        _edge_ticket(3, EDGE_DEVICE + 2, before, R),  # b1: b2 comes 30 d + 1 s later
        _edge_ticket(4, EDGE_DEVICE + 2, R + 30 * day + dt.timedelta(seconds=1), None,
                     visit_count=0),
        _edge_ticket(5, EDGE_DEVICE + 3, before, R),  # c1: c2 is soft-deleted
        _edge_ticket(6, EDGE_DEVICE + 3, R + day, R + 2 * day, visit_count=0, deleted_at=R),
        _edge_ticket(7, EDGE_DEVICE + 4, R + 2 * day, R),  # d1: only itself in its windows
        _edge_ticket(8, EDGE_DEVICE + 5, before, R),  # e1: e2 is not a confirmed failure
        _edge_ticket(9, EDGE_DEVICE + 5, R + day, R + 2 * day, visit_count=0,
                     resolution_code="user_error"),
        _edge_ticket(10, EDGE_DEVICE + 6, R - 5 * day, R - 4 * day, visit_count=0,
                     deleted_at=R),  # f1 (deleted) is f2's only prior
        _edge_ticket(11, EDGE_DEVICE + 6, R, None, visit_count=0),
    ]  # fmt: skip


def load_edges(engine: sa.Engine) -> None:
    """The edge tickets, their devices, customer and model, and a fixed first visit each for
    the tickets with visit_count 1 (checked out 12 h before R)."""
    meta = sa.MetaData()
    with engine.begin() as conn:

        def table(name: str) -> sa.Table:
            return sa.Table(f"aftersales__{name}", meta, autoload_with=conn)

        conn.execute(table("product_model").insert(), [{**STAMP, "id": EDGE_MODEL,
                     "code": "EDGE-1", "name": "Edge", "product_line": "compressor"}])  # fmt: skip
        conn.execute(
            table("customer").insert(),
            [
                {
                    **STAMP,
                    "id": EDGE_CUSTOMER,
                    "code": "CEDGE",
                    "name": "Edge",
                    "tier": "standard",
                    "internal": False,
                }
            ],
        )
        conn.execute(table("device").insert(), [
            {**STAMP, "id": EDGE_DEVICE + k, "code": f"E{k}", "name": f"E{k}",
             "serial_no": f"EDGE{k}", "product_model": EDGE_MODEL, "customer": EDGE_CUSTOMER,
             "region": "edge", "status": "active"} for k in range(1, 7)])  # fmt: skip
        tickets = edge_tickets()
        conn.execute(table("ticket").insert(), tickets)
        out = R - dt.timedelta(hours=12)
        conn.execute(table("field_visit").insert(), [
            {**STAMP, "id": EDGE_VISIT + t["id"] - EDGE_TICKET, "number": f"FV-EDGE-{t['id']}",
             "ticket": t["id"], "visit_type": "repair", "sequence": 1, "status": "completed",
             "result": "fixed", "check_in_at": out - dt.timedelta(hours=1), "check_out_at": out,
             "labour_min": 60} for t in tickets if t["visit_count"] == 1])  # fmt: skip


def _days_after(column: str, days: int, dialect: str) -> str:
    if dialect == "postgresql":
        return f"({column} + INTERVAL '{days} days')"
    return f"(datetime({column}, '{days:+d} days') || '.000000')"


def refailed_sql(dialect: str) -> str:
    """E6: another confirmed-failure ticket on the device created in (resolved_at, +30 d]."""
    return (f"EXISTS (SELECT 1 FROM aftersales__ticket o WHERE o.device = t.device AND o.id <> "
            f"t.id AND o.created_at > t.resolved_at AND o.created_at <= "
            f"{_days_after('t.resolved_at', 30, dialect)} AND {CONFIRMED.format(o='o')} "
            "AND o.deleted_at IS NULL)")  # fmt: skip


def repeat_sql(dialect: str) -> str:
    """Q8: another confirmed-failure ticket on the device resolved in [created − 30 d, created)."""
    return (f"EXISTS (SELECT 1 FROM aftersales__ticket o WHERE o.device = t.device AND o.id <> "
            f"t.id AND o.resolved_at < t.created_at AND o.resolved_at >= "
            f"{_days_after('t.created_at', -30, dialect)} AND {CONFIRMED.format(o='o')} "
            "AND o.deleted_at IS NULL)")  # fmt: skip


__all__ = ["EDGE_MODEL", "R", "edge_tickets", "load_contracts", "load_edges", "refailed_sql",
           "repeat_sql"]  # fmt: skip
