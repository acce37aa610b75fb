"""Generated after-sales data for the report engine: customers, models, teams and tickets.

The distributions follow AFTERSALES.md §5 loosely (channels, types, priorities, SLA breaches,
reopens, escalations); the values only need to exercise every KPI formula of §4, with blanks
where the process has not reached a step (no response yet, not resolved). The same seed gives
the same rows. Used by bench/reports.py and by tests/engine/reports (small N).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _load import copy_rows  # bench/ is on sys.path (script or test conftest)
from _report_data_bulk import write_rows

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "templates" / "aftersales"
TICKET = "aftersales__ticket"
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPAN = 365 * 86_400
MODELS = [("AC-300", "compressor"), ("AC-500", "compressor"), ("WP-200", "purifier"),
          ("WP-800", "purifier"), ("IC-10", "controller")]  # fmt: skip
REGIONS = {"east": 30, "south": 20, "north": 15, "central": 12, "southwest": 10,
           "northeast": 7, "northwest": 6}  # fmt: skip
TIERS = {"vip": 5, "key": 15, "standard": 80}
CHANNELS = {"phone": 35, "wechat": 25, "web": 12, "qr": 10, "app": 8, "email": 3, "system": 7}
TYPES = {"repair": 45, "tech_support": 18, "consultation": 12, "pm": 7, "installation": 6,
         "return_exchange": 4, "complaint": 3, "feedback": 3, "recall": 2}  # fmt: skip
PRIORITIES = {"urgent": 5, "high": 20, "medium": 45, "low": 30}
FAULTS = {"E07": 14, "E12": 10, "W03": 12, "W09": 8, "F01": 9, "F05": 7, "G00": 10, "G90": 6,
          "S01": 3, "S02": 5, "S03": 2, "L01": 4}  # fmt: skip
CATEGORY = {"E07": "hardware", "E12": "hardware", "W03": "hardware", "W09": "hardware",
            "F01": "software", "F05": "software", "G00": "usage", "G90": "usage",
            "S01": "service", "S02": "service", "S03": "service", "L01": "logistics"}  # fmt: skip
RESOLUTIONS = {"remote_fixed": 30, "onsite_fixed": 25, "part_replaced": 15, "unit_replaced": 3,
               "answered": 15, "user_error": 6, "no_fault_found": 4, "duplicate": 2}  # fmt: skip
SENTIMENTS = {"positive": 20, "neutral": 68, "negative": 12}
TICKET_COLUMNS = [
    "number", "channel", "ticket_type", "customer", "product_model", "region", "fault_code",
    "problem_category", "sentiment", "priority", "team", "status", "status_category",
    "sla_start", "response_by", "resolution_by", "first_response_at", "frt_bsec",
    "first_resolved_at", "resolved_at", "first_resolution_bsec", "resolution_bsec",
    "hold_bsec", "response_state", "resolution_state", "escalation_level", "resolution_code",
    "close_reason", "reopen_count", "agent_reply_count", "transfer_count", "visit_count",
    "handle_sec", "created_at", "updated_at", "version", "device",
]  # fmt: skip
DEVICE_TYPES = ("repair", "installation", "pm", "return_exchange", "recall")


def install(engine: sa.Engine, bundle: Any = None) -> None:
    """Install the after-sales bundle (its form tables; `bundle`: one loaded already) unless
    it is there already."""
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    if sa.inspect(engine).has_table(TICKET):
        return
    import_bundle(db=engine, bundle=bundle or load_bundle(BUNDLE))


def load(engine: sa.Engine, tickets: int, *, seed: int = 42, teams: int = 8) -> None:
    """Masters then `tickets` tickets, committed (COPY on PostgreSQL)."""
    rng = random.Random(seed)
    customers = max(40, tickets // 25)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    meta = sa.MetaData()
    with engine.begin() as conn:
        customer = sa.Table("aftersales__customer", meta, autoload_with=conn)
        model = sa.Table("aftersales__product_model", meta, autoload_with=conn)
        team = sa.Table("aftersales__team", meta, autoload_with=conn)
        stamp = {"created_at": now, "updated_at": now, "version": 1}
        conn.execute(model.insert(), [
            {**stamp, "id": i + 1, "code": code, "name": code, "product_line": line}
            for i, (code, line) in enumerate(MODELS)])  # fmt: skip
        conn.execute(team.insert(), [
            {**stamp, "id": i + 1, "code": f"T{i + 1:02d}", "name": f"Team {i + 1}"}
            for i in range(teams)])  # fmt: skip
        tiers = _pick(TIERS, customers, rng)
        regions = _pick(REGIONS, customers, rng)
        device = sa.Table("aftersales__device", meta, autoload_with=conn)
        conn.execute(customer.insert(), [
            {**stamp, "id": i + 1, "code": f"C{i + 1:06d}", "name": f"Customer {i + 1}",
             "tier": tiers[i], "region": regions[i], "internal": rng.random() < 0.02,
             "churn_risk": rng.random() < 0.03}
            for i in range(customers)])  # fmt: skip
        write_rows(conn, device, (  # 500,000 devices at 1M tickets: in batches
            {**stamp, "id": d, "code": f"D{d:07d}", "name": f"D{d}", "serial_no": f"SN{d:08d}",
             "product_model": device_model(d), "batch_no": device_batch(d), "customer":
             1 + d % customers, "region": list(REGIONS)[d % len(REGIONS)], "status": "active",
             "install_date": dt.date(2024, 1 + d % 12, 1 + d % 28)}
            for d in range(1, devices_for(tickets) + 1)))  # fmt: skip
    rows = ticket_rows(tickets, customers=customers, teams=teams, seed=seed)
    if engine.dialect.name == "postgresql":
        copy_rows(engine, TICKET, TICKET_COLUMNS, rows)
    else:
        _sqlite_insert(engine, rows)


def _sqlite_insert(engine: sa.Engine, rows: Iterator[list[Any]]) -> None:
    """Batched inserts in one transaction (bench/_report_data_bulk.py)."""
    target = sa.Table(TICKET, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        write_rows(conn, target, (dict(zip(TICKET_COLUMNS, row, strict=True)) for row in rows))


def devices_for(tickets: int) -> int:
    return max(50, tickets // 2)


def device_model(device: int) -> int:
    return 1 + device % len(MODELS)


def device_batch(device: int) -> str:
    return f"24{1 + device % 12:02d}{'AB'[device % 2]}"


def _pick(table: dict[str, int], n: int, rng: random.Random) -> list[str]:
    return rng.choices(list(table), weights=list(table.values()), k=n)


def ticket_rows(count: int, *, customers: int, teams: int, seed: int) -> Iterator[list[Any]]:
    """`count` ticket rows in `TICKET_COLUMNS` order, created through 2025 (UTC)."""
    rng = random.Random(seed + 1)
    for serial in range(count):
        created = START + dt.timedelta(seconds=int(SPAN * serial / count) + rng.randint(0, 3599))
        row = _ticket(serial, created, customers, teams, rng)
        device = rng.randint(1, devices_for(count))
        has_device = row[2] in DEVICE_TYPES and rng.random() < 0.9
        row[4] = device_model(device) if has_device else row[4]
        yield [*row, device if has_device else None]


def _ticket(serial: int, created: dt.datetime, customers: int, teams: int,
            rng: random.Random) -> list[Any]:  # fmt: skip
    kind = _pick(TYPES, 1, rng)[0]
    priority = _pick(PRIORITIES, 1, rng)[0]
    fault = _pick(FAULTS, 1, rng)[0] if kind in ("repair", "tech_support", "recall") else None
    cancelled = rng.random() < 0.03
    responded = rng.random() < 0.95
    resolved = responded and not cancelled and rng.random() < 0.85
    target = {"urgent": 1800, "high": 3600, "medium": 7200, "low": 14400}[priority]
    frt = int(rng.lognormvariate(7.6, 0.8)) if responded else None
    first_response = created + dt.timedelta(seconds=frt * 2) if frt is not None else None
    resolution = int(rng.lognormvariate(10.5, 0.9)) if resolved else None
    hold = rng.choice([0, 0, 0, rng.randint(1800, 86_400)]) if resolved else 0
    first_resolved = created + dt.timedelta(seconds=resolution * 3) if resolution else None
    reopens = (1 if rng.random() < 0.05 else 0) + (1 if rng.random() < 0.01 else 0)
    final = resolution + rng.randint(0, 40_000) * reopens if resolution else None
    resolved_at = first_resolved + dt.timedelta(seconds=(final or 0) - (resolution or 0)) \
        if first_resolved else None  # fmt: skip
    status = "cancelled" if cancelled else _status(resolved, responded, rng)
    response_state = _state(frt, target, rng, responded)
    resolution_state = _state(resolution, target * 20, rng, resolved)
    resolution_code = _pick(RESOLUTIONS, 1, rng)[0] if resolved else None
    close_reason = "cancelled_duplicate" if cancelled and rng.random() < 0.3 else None
    category = {"open": "open", "waiting_customer": "paused", "resolved": "resolved"}
    return [
        f"WO-{created:%Y%m}-{serial:07d}", _pick(CHANNELS, 1, rng)[0], kind,
        rng.randint(1, customers), rng.randint(1, len(MODELS)), _pick(REGIONS, 1, rng)[0],
        fault, CATEGORY.get(fault or ""), _pick(SENTIMENTS, 1, rng)[0] if rng.random() < 0.9
        else None, priority, rng.randint(1, teams), status,
        category.get(status, "closed" if status in ("closed", "cancelled") else "open"),
        created, created + dt.timedelta(seconds=target), created + dt.timedelta(
            seconds=target * 20), first_response, frt, first_resolved, resolved_at, resolution,
        final, hold, response_state, resolution_state, rng.choice([0] * 17 + [1, 1, 2]),
        resolution_code, close_reason, reopens, rng.choice([0, 1, 1, 1, 2, 3, 5]),
        rng.choice([0] * 8 + [1, 2]), rng.choice([0] * 6 + [1, 1, 2]),
        rng.randint(60, 3600), created, created, 1,
    ]  # fmt: skip


def _status(resolved: bool, responded: bool, rng: random.Random) -> str:
    if resolved:
        return "closed" if rng.random() < 0.8 else "resolved"
    if not responded:
        return "new"
    return rng.choice(["assigned", "in_progress", "waiting_customer", "waiting_parts", "onsite"])


def _state(seconds: int | None, target: int, rng: random.Random, done: bool) -> str:
    if not done or seconds is None:
        return rng.choice(["running", "running", "warned", "breached"])
    return "met" if seconds <= target or rng.random() < 0.6 else "breached"


# --- the KPIs written by hand (the correctness suite and the benchmark compare with these) ---

POP = (
    "t.deleted_at IS NULL AND COALESCE(t.status, '') <> 'cancelled' "
    "AND (c.internal IS NULL OR NOT c.internal) "
    "AND COALESCE(t.close_reason, '') <> 'cancelled_duplicate' "
    "AND COALESCE(t.resolution_code, '') <> 'duplicate'"
)
FROM = (
    "FROM aftersales__ticket t LEFT JOIN aftersales__customer c "
    "ON c.id = t.customer AND c.deleted_at IS NULL"
)
IN_PERIOD = "t.created_at >= :low AND t.created_at < :high"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOT_CONFIRMED = "('user_error', 'no_fault_found', 'answered', 'duplicate')"


def _grain(column: str, grain: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(date_trunc('{grain}', timezone('Asia/Shanghai', {column})) AS DATE)"
    if grain == "week":
        return f"date({column}, '+480 minutes', 'weekday 0', '-6 days')"
    return f"date({column}, '+480 minutes', 'start of {grain}')"


def _seconds(start: str, end: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM ({end} - {start})))"
    return f"(strftime('%s', {end}) - strftime('%s', {start}))"


UNDATED = ("i2_churn_warnings",)  # KPIs of the present: no period filter


def period_params(first: dt.date, last: dt.date) -> dict[str, dt.datetime]:
    """:low and :high of the local (Asia/Shanghai) days [first, last], in UTC."""
    low = dt.datetime.combine(first, dt.time(0), tzinfo=SHANGHAI)
    high = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=SHANGHAI)
    return {"low": low.astimezone(dt.UTC), "high": high.astimezone(dt.UTC)}


def hand_sql(key: str, dialect: str, *, raw_percentiles: bool = False) -> str:
    """The hand-written SQL of KPI report `key` with a created_at period (:low, :high).

    `raw_percentiles`: e1_frt_percentiles selects (week, frt_bsec) rows for a reference
    computation instead of computing the percentiles.
    """
    base = f"{FROM} WHERE {POP} AND {IN_PERIOD}"
    if key == "e1_frt":
        sql = (f"SELECT COUNT(*), AVG(t.frt_bsec) {base} AND t.first_response_at IS NOT NULL "
               "AND COALESCE(t.channel, '') <> 'system'")  # fmt: skip
    elif key == "e1_frt_percentiles":
        sql = _percentiles(base, dialect, raw=raw_percentiles)
    elif key == "e2_art":
        sql = (f"SELECT t.ticket_type, COUNT(*), SUM(t.first_resolution_bsec), "
               f"CAST(SUM(t.first_resolution_bsec) AS FLOAT) / NULLIF(COUNT(*), 0) {base} "
               "AND t.first_resolved_at IS NOT NULL GROUP BY t.ticket_type "
               "ORDER BY t.ticket_type")  # fmt: skip
    elif key == "e3_mttr":
        seconds = _seconds("t.created_at", "t.first_resolved_at", dialect)
        sql = (f"SELECT m.product_line, COUNT(*), AVG({seconds}) {FROM} "
               "LEFT JOIN aftersales__product_model m ON m.id = t.product_model "
               f"AND m.deleted_at IS NULL WHERE {POP} AND {IN_PERIOD} AND t.ticket_type = 'repair'"
               " AND t.device IS NOT NULL AND t.first_resolved_at IS NOT NULL AND "
               f"COALESCE(t.resolution_code, '') NOT IN {NOT_CONFIRMED} "
               "GROUP BY m.product_line ORDER BY m.product_line")  # fmt: skip
    elif key == "e5_fcr":
        first = ("t.agent_reply_count <= 1 AND t.reopen_count = 0 AND t.visit_count = 0 AND "
                 "t.transfer_count = 0 AND t.escalation_level = 0")  # fmt: skip
        sql = (f"SELECT t.channel, COUNT(*), SUM(CASE WHEN {first} THEN 1 ELSE 0 END), "
               f"CAST(SUM(CASE WHEN {first} THEN 1 ELSE 0 END) AS FLOAT) / COUNT(*) {base} AND "
               "t.first_resolved_at IS NOT NULL AND t.ticket_type IN ('tech_support', "
               "'consultation', 'repair') AND COALESCE(t.channel, '') <> 'system' "
               "GROUP BY t.channel ORDER BY t.channel")  # fmt: skip
    elif key in ("q1_response_sla", "q2_resolution_sla"):
        state = "t.response_state" if key.startswith("q1") else "t.resolution_state"
        met = f"SUM(CASE WHEN {state} = 'met' THEN 1 ELSE 0 END)"
        breached = f"SUM(CASE WHEN {state} = 'breached' THEN 1 ELSE 0 END)"
        sql = (f"SELECT tm.name, {met}, {breached}, CAST({met} AS FLOAT) / ({met} + {breached}) "
               f"{FROM} LEFT JOIN aftersales__team tm ON tm.id = t.team AND tm.deleted_at IS NULL"
               f" WHERE {POP} AND {IN_PERIOD} AND {state} IN ('met', 'breached') "
               f"GROUP BY tm.name ORDER BY 4, 1")  # fmt: skip
    elif key == "q3_reopen_rate":
        month = _grain("t.first_resolved_at", "month", dialect)
        reopened = "SUM(CASE WHEN t.reopen_count >= 1 THEN 1 ELSE 0 END)"
        sql = (f"SELECT {month}, COUNT(*), {reopened}, SUM(t.reopen_count), "
               f"CAST({reopened} AS FLOAT) / COUNT(*), "
               "CAST(SUM(t.reopen_count) AS FLOAT) / COUNT(*)"
               f" {base} AND t.first_resolved_at IS NOT NULL GROUP BY 1 ORDER BY 1")  # fmt: skip
    elif key == "q7_complaint_rate":
        complaints = "SUM(CASE WHEN t.ticket_type = 'complaint' THEN 1 ELSE 0 END)"
        others = "SUM(CASE WHEN t.ticket_type <> 'complaint' THEN 1 ELSE 0 END)"
        sql = (f"SELECT t.region, {complaints}, {others}, "
               f"CAST({complaints} * 1000 AS FLOAT) / NULLIF({others}, 0) {base} "
               "GROUP BY t.region ORDER BY t.region")  # fmt: skip
    elif key == "i1_top_faults":
        sql = (f"WITH f AS (SELECT t.fault_code AS code, COUNT(*) AS n {base} AND t.fault_code IS "
               "NOT NULL GROUP BY t.fault_code), r AS (SELECT code, n, ROW_NUMBER() OVER (ORDER BY"
               " n DESC, code) AS rn FROM f) SELECT CASE WHEN rn <= 10 THEN code END, SUM(n) FROM r"
               " GROUP BY CASE WHEN rn <= 10 THEN code END, CASE WHEN rn <= 10 THEN 0 ELSE 1 END "
               "ORDER BY CASE WHEN rn <= 10 THEN 0 ELSE 1 END, 2 DESC, 1")  # fmt: skip
    elif key == "i4_negative_sentiment":
        negative = "SUM(CASE WHEN t.sentiment = 'negative' THEN 1 ELSE 0 END)"
        sql = (f"SELECT t.channel, COUNT(*), {negative}, CAST({negative} AS FLOAT) / COUNT(*) "
               f"{base} AND t.sentiment IS NOT NULL GROUP BY t.channel "
               "ORDER BY t.channel")  # fmt: skip
    elif key == "i5_failed_devices":
        sql = (f"SELECT m.code, d.batch_no, d.region, COUNT(DISTINCT t.device) {FROM} "
               "JOIN aftersales__device d ON d.id = t.device AND d.deleted_at IS NULL "
               "LEFT JOIN aftersales__product_model m ON m.id = d.product_model AND "
               f"m.deleted_at IS NULL WHERE {POP} AND {IN_PERIOD} AND t.ticket_type IN "
               f"('repair', 'return_exchange') AND COALESCE(t.resolution_code, '') NOT IN "
               f"{NOT_CONFIRMED} GROUP BY m.code, d.batch_no, d.region "
               "ORDER BY 1, 2, 3")  # fmt: skip
    elif key == "i2_churn_warnings":  # now: no period
        sql = ("SELECT c.region, COUNT(*) FROM aftersales__customer c WHERE c.deleted_at IS NULL "
               "AND c.churn_risk AND (c.internal IS NULL OR NOT c.internal) "
               "GROUP BY c.region ORDER BY c.region")  # fmt: skip
    elif key == "t4_inflow":
        week = _grain("t.created_at", "week", dialect)
        sql = (f"SELECT {week}, COUNT(*), SUM(CASE WHEN t.first_resolved_at IS NOT NULL THEN 1 "
               f"ELSE 0 END) {base} GROUP BY 1 ORDER BY 1")  # fmt: skip
    else:
        raise KeyError(key)
    return sql


def _percentiles(base: str, dialect: str, *, raw: bool) -> str:
    week = _grain("t.first_response_at", "week", dialect)
    where = f"{base} AND t.first_response_at IS NOT NULL AND COALESCE(t.channel, '') <> 'system'"
    if raw:
        return f"SELECT {week}, t.frt_bsec {where} ORDER BY 1"
    if dialect == "postgresql":
        return (f"SELECT {week}, COUNT(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY "
                "t.frt_bsec), percentile_cont(0.9) WITHIN GROUP (ORDER BY t.frt_bsec) "
                f"{where} GROUP BY 1 ORDER BY 1")  # fmt: skip
    pick = []
    for p in (0.5, 0.9):
        pos = f"((n - 1) * {p})"
        low = f"MAX(CASE WHEN rn = CAST({pos} AS INTEGER) + 1 THEN v END)"
        high = f"MAX(CASE WHEN rn = CAST({pos} AS INTEGER) + 2 THEN v END)"
        frac = f"MAX({pos} - CAST({pos} AS INTEGER))"
        pick.append(f"CASE WHEN {frac} > 0 THEN {low} + ({high} - {low}) * {frac} ELSE {low} END")
    return (f"SELECT w, COUNT(*), {pick[0]}, {pick[1]} FROM (SELECT {week} AS w, t.frt_bsec AS v,"
            f" ROW_NUMBER() OVER (PARTITION BY {week} ORDER BY t.frt_bsec) AS rn, COUNT(t.frt_bsec)"
            f" OVER (PARTITION BY {week}) AS n {where}) GROUP BY w ORDER BY w")  # fmt: skip


KPI_KEYS = [
    "e1_frt", "e1_frt_percentiles", "e2_art", "e3_mttr", "e5_fcr", "q1_response_sla",
    "q2_resolution_sla", "q3_reopen_rate", "q7_complaint_rate", "i1_top_faults",
    "i4_negative_sentiment", "i5_failed_devices", "t4_inflow", "i2_churn_warnings",
]  # fmt: skip

__all__ = [
    "BUNDLE", "FROM", "KPI_KEYS", "POP", "TICKET", "TICKET_COLUMNS", "UNDATED", "hand_sql",
    "install", "load", "period_params", "ticket_rows",
]  # fmt: skip
