"""Generated data for the blended KPIs (AFTERSALES.md §4 P1 cost per repair, P5, P7, T3) on
top of bench/_report_data.py's tickets: warehouses, parts, stock rows and their moves, daily
stock snapshots (as the p5_stock_snapshot job writes them), completed visits with items,
service contracts and staff. Written straight to the form tables; the same seed gives the
same rows. Built so that each KPI has a group present in its second population only: no
consume move in February (P1), a stock row never consumed (P5), no visit in the northwest
(P7).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

import _report_data as base  # bench/ is on sys.path (script or test conftest)
import sqlalchemy as sa

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STAMP = {"created_at": NOW, "updated_at": NOW, "version": 1}
WAREHOUSES = 6
PARTS = 8
IDLE = (2, PARTS)  # (warehouse, part): received, never consumed
P = "aftersales__"


def install(engine: sa.Engine) -> None:
    base.install(engine)


def load(engine: sa.Engine, tickets: int, *, seed: int = 42) -> None:
    """The base data (customers, devices, `tickets` tickets), then the blend rows."""
    base.load(engine, tickets, seed=seed)
    rng = random.Random(seed + 11)
    meta = sa.MetaData()
    with engine.begin() as conn:

        def table(name: str) -> sa.Table:
            return sa.Table(P + name, meta, autoload_with=conn)

        users = _users(conn, 10)
        regions = list(base.REGIONS)
        conn.execute(table("warehouse").insert(), [
            {**STAMP, "id": w, "code": f"BW{w:02d}", "name": f"Warehouse {w}",
             "wh_type": "regional", "keeper": users[0], "region": regions[w % len(regions)]}
            for w in range(1, WAREHOUSES + 1)])  # fmt: skip
        conn.execute(table("spare_part").insert(), [
            {**STAMP, "id": p, "code": f"BP{p:02d}", "name": f"Part {p}", "standard_cost": 40 * p,
             "sale_price": 60 * p} for p in range(1, PARTS + 1)])  # fmt: skip
        stocks = [(w, p) for w in range(1, WAREHOUSES + 1) for p in range(1, PARTS + 1)
                  if (w + p) % 3 != 0 or (w, p) == IDLE]  # fmt: skip
        conn.execute(table("stock").insert(), [
            {**STAMP, "id": i + 1, "warehouse": w, "spare_part": p, "label": f"BW{w}/BP{p}"}
            for i, (w, p) in enumerate(stocks)])  # fmt: skip
        conn.execute(table("stock_move").insert(), list(_moves(stocks, rng)))
        conn.execute(table("stock_snapshot").insert(), list(_snapshots(stocks, rng)))
        visits, items = _visits(conn, rng)
        conn.execute(table("field_visit").insert(), visits)
        conn.execute(table("field_visit__items").insert(), items)
        customer = table("customer")
        customers = conn.execute(
            sa.select(customer.c.id, customer.c.region).order_by(customer.c.id)
        ).all()
        conn.execute(table("service_contract").insert(), list(_contracts(customers, rng)))
        conn.execute(table("staff").insert(), [
            {**STAMP, "id": i + 1, "user": u, "display_name": f"Staff {u}",
             "availability": ["available", "away", "off", None][i % 4]}
            for i, u in enumerate(users)])  # fmt: skip


def _users(conn: sa.Connection, count: int) -> list[int]:
    from engine.storage.tables import users

    first = (conn.execute(sa.select(sa.func.max(users.c.id))).scalar() or 0) + 1
    ids = list(range(first, first + count))
    conn.execute(users.insert(), [
        {"id": u, "username": f"blend_user_{u}", "display_name": f"User {u}",
         "created_at": NOW, "updated_at": NOW} for u in ids])  # fmt: skip
    return ids


def _at(rng: random.Random) -> dt.datetime:
    return base.START + dt.timedelta(seconds=rng.randint(0, base.SPAN - 1))


def _moves(stocks: list[tuple[int, int]], rng: random.Random) -> Any:
    n = 0
    for index, (w, p) in enumerate(stocks):
        n += 1
        yield {**STAMP, "id": n, "at": base.START - dt.timedelta(days=30), "stock": index + 1,
               "move_type": "receipt", "qty": 50, "unit_cost": 40 * p}  # fmt: skip
        if (w, p) == IDLE:
            continue
        for _ in range(rng.randint(2, 12)):
            at = _at(rng)
            if (at + dt.timedelta(hours=8)).month == 2:  # P1: February (Shanghai), no parts cost
                continue
            n += 1
            yield {
                **STAMP,
                "id": n,
                "at": at,
                "stock": index + 1,
                "move_type": "consume",
                "qty": -rng.randint(1, 3),
                "unit_cost": 40 * p + rng.choice((0, 5, 10)),
            }


def _snapshots(stocks: list[tuple[int, int]], rng: random.Random) -> Any:
    """Every 10th day from mid-2024 (the first months fall out of the trailing 12 months);
    ids from the table's sequence, which the nightly job's writes then continue."""
    day = dt.date(2024, 6, 1)
    while day < dt.date(2026, 1, 1):
        for w, p in stocks:
            qty = rng.randint(0, 40)
            yield {**STAMP, "snapshot_date": day, "warehouse": w, "spare_part": p,
                   "qty": qty, "value": qty * 40 * p}  # fmt: skip
        day += dt.timedelta(days=10)


def _visits(conn: sa.Connection, rng: random.Random) -> tuple[list[Any], list[Any]]:
    """One visit for every 4th ticket, none in the northwest (P7's contract-only region)."""
    ticket = sa.Table(base.TICKET, sa.MetaData(), autoload_with=conn)
    rows = conn.execute(
        sa.select(ticket.c.id, ticket.c.created_at)
        .where(ticket.c.id % 4 == 0, sa.func.coalesce(ticket.c.region, "") != "northwest")
        .order_by(ticket.c.id)
    ).all()
    visits, items = [], []
    for n, (ticket_id, created) in enumerate(rows, start=1):
        if not isinstance(created, dt.datetime):  # SQLite gives text
            created = dt.datetime.fromisoformat(created)
        created = created.replace(tzinfo=dt.UTC) if created.tzinfo is None else created
        status = rng.choices(["completed", "incomplete", "cancelled"], [80, 15, 5])[0]
        out = created + dt.timedelta(hours=rng.randint(2, 90))
        visits.append({**STAMP, "id": n, "number": f"FV{n:06d}", "ticket": ticket_id,
                       "visit_type": "repair", "status": status,
                       "check_out_at": out if status == "completed" else None})  # fmt: skip
        for position in range(rng.randint(0, 3)):  # some completed visits have no items
            chargeable = rng.random() < 0.6
            qty, price = rng.randint(1, 4), rng.choice((100.0, 200.0, 350.0))
            items.append({"parent_id": n, "position": position, "item_type": "labour",
                          "qty": qty, "unit_price": price, "chargeable": chargeable,
                          "amount": qty * price if chargeable else 0})  # fmt: skip
    return visits, items


def _contracts(customers: Sequence[Any], rng: random.Random) -> Any:
    """Every 5th contract for a northwest customer (P7's contract-only region)."""
    northwest = [c for c, region in customers if region == "northwest"]
    statuses = {"draft": 10, "active": 70, "expired": 10, "terminated": 10}
    for n in range(1, 121):
        start = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
        pool = northwest if n % 5 == 0 and northwest else [c for c, _ in customers]
        yield {**STAMP, "id": n, "number": f"SC{n:05d}", "customer": rng.choice(pool),
               "contract_type": "amc", "start_date": start,
               "end_date": start + dt.timedelta(days=365), "amount": rng.randint(5, 80) * 100,
               "status": rng.choices(list(statuses), list(statuses.values()))[0]}  # fmt: skip


# --- the KPIs written by hand ------------------------------------------------------------------

CONFIRMED = (
    f"{base.POP} AND t.ticket_type = 'repair' AND t.device IS NOT NULL "
    f"AND t.first_resolved_at IS NOT NULL AND COALESCE(t.resolution_code, '') NOT IN "
    f"{base.NOT_CONFIRMED}"
)
MOVES = (
    f"FROM {P}stock_move m JOIN {P}stock s ON s.id = m.stock AND s.deleted_at IS NULL "
    f"LEFT JOIN {P}warehouse w ON w.id = s.warehouse AND w.deleted_at IS NULL "
    f"LEFT JOIN {P}spare_part p ON p.id = s.spare_part AND p.deleted_at IS NULL "
    "WHERE m.deleted_at IS NULL AND m.move_type = 'consume'"
)
NOT_INTERNAL = "(c.internal IS NULL OR NOT c.internal)"


def hand_sql(key: str, dialect: str, *, region: bool = False) -> str:
    """One statement per KPI, each population's rows stacked (UNION ALL) and grouped once;
    the caller computes the ratio. (:low, :high) bound an instant period, (:first, :last) a
    date one; P5 reads :since_at and :since_day (the trailing 12 months); `region`: P1 and P7
    also keep :region (the warehouse's or ticket's, and the customer's for contracts)."""
    moves_region = " AND w.region = :region" if region else ""
    ticket_region = " AND t.region = :region" if region else ""
    if key == "p1_cost_per_repair":
        month = base._grain("m.at", "month", dialect)
        resolved = base._grain("t.first_resolved_at", "month", dialect)
        return (
            f"SELECT k, SUM(cost), SUM(n) FROM (SELECT {month} AS k, -m.qty * m.unit_cost AS "
            f"cost, 0 AS n {MOVES}{moves_region} AND m.at >= :low AND m.at < :high UNION ALL "
            f"SELECT {resolved}, NULL, 1 {base.FROM} WHERE {CONFIRMED}{ticket_region} AND "
            "t.first_resolved_at >= :low AND t.first_resolved_at < :high) x GROUP BY k ORDER BY k"
        )
    if key == "p5_stock_turns":
        return (
            "SELECT wc, pc, SUM(cost), AVG(v), SUM(n) FROM (SELECT w.code AS wc, p.code AS pc, "
            f"-m.qty * m.unit_cost AS cost, NULL AS v, 0 AS n {MOVES} AND m.at >= :since_at "
            "UNION ALL SELECT w.code, p.code, NULL, z.value, 1 FROM "
            f"{P}stock_snapshot z LEFT JOIN {P}warehouse w ON w.id = z.warehouse AND "
            f"w.deleted_at IS NULL LEFT JOIN {P}spare_part p ON p.id = z.spare_part AND "
            "p.deleted_at IS NULL WHERE z.deleted_at IS NULL AND z.snapshot_date >= :since_day"
            ") x GROUP BY wc, pc ORDER BY wc, pc"
        )
    if key == "p7_service_revenue":
        return (
            f"SELECT r, SUM(visit), SUM(contract) FROM (SELECT t.region AS r, i.amount AS visit, "
            f"NULL AS contract FROM {P}field_visit v JOIN {P}ticket t ON t.id = v.ticket AND "
            f"t.deleted_at IS NULL LEFT JOIN {P}customer c ON c.id = t.customer AND "
            f"c.deleted_at IS NULL LEFT JOIN {P}field_visit__items i ON i.parent_id = v.id "
            f"WHERE v.deleted_at IS NULL AND v.status = 'completed' AND v.check_out_at IS NOT "
            f"NULL AND {NOT_INTERNAL}{ticket_region} AND v.check_out_at >= :low AND "
            "v.check_out_at < :high "
            f"UNION ALL SELECT c.region, NULL, k.amount FROM {P}service_contract k LEFT JOIN "
            f"{P}customer c ON c.id = k.customer AND c.deleted_at IS NULL WHERE k.deleted_at IS "
            f"NULL AND COALESCE(k.status, '') <> 'draft' AND k.start_date IS NOT NULL AND "
            f"{NOT_INTERNAL}{' AND c.region = :region' if region else ''} AND k.start_date >= "
            ":first AND k.start_date <= :last"
            ") x GROUP BY r ORDER BY r"
        )
    if key == "t3_tickets_per_head":
        month = base._grain("t.first_resolved_at", "month", dialect)
        heads = (f"(SELECT COUNT(*) FROM {P}staff WHERE deleted_at IS NULL AND "
                 "COALESCE(availability, '') <> 'off')")  # fmt: skip
        return (
            f"SELECT {month}, COUNT(*), {heads} {base.FROM} WHERE {base.POP} AND "
            "t.first_resolved_at IS NOT NULL AND t.first_resolved_at >= :low AND "
            f"t.first_resolved_at < :high GROUP BY {month} ORDER BY 1"
        )
    raise KeyError(key)


KPI_KEYS = ["p1_cost_per_repair", "p5_stock_turns", "p7_service_revenue", "t3_tickets_per_head"]
DATE_FIELDS = {"p1_cost_per_repair": "at", "p7_service_revenue": "check_out_at",
               "t3_tickets_per_head": "first_resolved_at"}  # fmt: skip

__all__ = ["DATE_FIELDS", "KPI_KEYS", "hand_sql", "install", "load"]
