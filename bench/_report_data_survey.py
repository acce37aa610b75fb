"""Generated satisfaction surveys on top of bench/_report_data.py's tickets (AFTERSALES §5,
signal 4): about 75 % of resolved tickets are surveyed 24 h after resolution, 35 % of those
answer within 7 days; CSAT 5/4/3/2/1 = 55/25/10/6/4 %, one point lower on breached or reopened
tickets; NPS is asked on about 60 % of surveys; CES 1–7. Some surveys are cancelled,
suppressed or still waiting, and a few hang off cancelled tickets (which every KPI excludes).
The stored formulas nps_bucket and is_poor are written as the form computes them. The same
seed gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa
from _report_data import POP  # bench/ is on sys.path (script or test conftest)
from _report_data_bulk import write_rows
from _report_data_sql import count_if, in_period, ratio

SURVEY = "aftersales__survey_response"
CSAT = {5: 55, 4: 25, 3: 10, 2: 6, 1: 4}
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def load_surveys(engine: sa.Engine, *, seed: int = 11, batch: int = 20_000) -> int:
    """Insert the surveys of every ticket already loaded, `batch` tickets per transaction;
    returns how many."""
    rng = random.Random(seed)
    meta = sa.MetaData()
    with engine.begin() as conn:
        ticket = sa.Table("aftersales__ticket", meta, autoload_with=conn)
        survey = sa.Table(SURVEY, meta, autoload_with=conn)
    columns = [ticket.c[n] for n in ("id", "customer", "team", "status", "resolved_at",
                                     "resolution_state", "reopen_count", "created_at")]  # fmt: skip
    count = last = 0
    while True:
        with engine.begin() as conn:
            tickets = conn.execute(sa.select(*columns).where(ticket.c.id > last)
                                   .order_by(ticket.c.id).limit(batch)).all()  # fmt: skip
            if not tickets:
                return count
            rows = (row for t in tickets if (row := _survey(t, rng)) is not None)
            count += write_rows(conn, survey, rows)
            last = tickets[-1][0]


def _survey(ticket: Any, rng: random.Random) -> dict[str, Any] | None:
    ticket_id, customer, team, status, resolved_at, state, reopens, created = ticket
    resolved_at = _utc(resolved_at) or (_utc(created) or NOW) + dt.timedelta(days=2)
    surveyed = ticket.resolved_at is not None and rng.random() < 0.75
    if not surveyed and not (status == "cancelled" and rng.random() < 0.3):
        return None
    scheduled = resolved_at + dt.timedelta(hours=24)
    row: dict[str, Any] = {
        "ticket": ticket_id, "customer": customer, "team": team, "scheduled_at": scheduled,
        "created_at": resolved_at, "updated_at": resolved_at, "version": 1,
        "callback_attempts": 0,
    }  # fmt: skip
    fate = rng.random()
    if fate < 0.05:
        return row | {"status": "cancelled"}
    if fate < 0.09:
        return row | {"status": "suppressed", "suppressed_reason": "recent"}
    sent = scheduled + dt.timedelta(minutes=rng.randint(0, 30))
    row |= {"sent_at": sent, "expires_at": sent + dt.timedelta(days=7), "channel": "email",
            "includes_nps": rng.random() < 0.6, "status": "sent"}  # fmt: skip
    if rng.random() >= 0.35:
        return row | {"status": "expired" if row["expires_at"] < NOW else "sent"}
    penalty = 1 if state == "breached" or int(reopens or 0) > 0 else 0
    csat = max(1, rng.choices(list(CSAT), weights=list(CSAT.values()))[0] - penalty)
    nps = _nps(csat, rng) if row["includes_nps"] else None
    ces = max(1, min(7, csat + rng.randint(0, 2)))
    responded = sent + dt.timedelta(seconds=rng.randint(60, 6 * 86_400))
    answer: dict[str, Any] = {
        "status": "answered", "responded_at": responded,
        "csat": csat, "timeliness": max(1, csat - rng.randint(0, 1)), "result_rating": csat,
        "nps": nps, "ces": ces if rng.random() < 0.9 else None,
    }  # fmt: skip
    answer["nps_bucket"] = _bucket(nps)
    answer["is_poor"] = csat <= 2 or (nps is not None and nps <= 6) or (
        answer["ces"] is not None and answer["ces"] <= 3)  # fmt: skip
    return row | answer


def _nps(csat: int, rng: random.Random) -> int:
    return max(0, min(10, 2 * csat + rng.randint(-2, 1)))


def _bucket(nps: int | None) -> str | None:
    if nps is None:
        return None
    return "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


# --- the KPIs written by hand (tests/engine/reports/test_kpi_survey.py, bench/reports.py) ---
# The population comes from the survey's ticket and customer: cancelled tickets, internal
# customers and duplicates are out, whatever the survey says.
SURVEYS = (
    "FROM aftersales__survey_response s JOIN aftersales__ticket t ON t.id = s.ticket AND "
    "t.deleted_at IS NULL LEFT JOIN aftersales__customer c ON c.id = s.customer AND "
    "c.deleted_at IS NULL LEFT JOIN aftersales__team tm ON tm.id = s.team AND tm.deleted_at "
    f"IS NULL WHERE s.deleted_at IS NULL AND {POP}"
)
ANSWERED = "s.responded_at IS NOT NULL AND " + in_period("s.responded_at")
# report key → (event-date field, hand SQL; :low/:high bound the period)
HAND_SQL: dict[str, tuple[str, str]] = {
    "q4_csat": ("responded_at", (
        f"SELECT tm.name, COUNT(*), {count_if('s.csat >= 4')}, "
        f"{ratio(count_if('s.csat >= 4'), 'COUNT(*)')}, AVG(CAST(s.csat AS FLOAT)) {SURVEYS} "
        f"AND s.csat IS NOT NULL AND {ANSWERED} GROUP BY tm.name ORDER BY tm.name")),
    "q4_response_rate": ("sent_at", (
        f"SELECT tm.name, COUNT(*), {count_if('s.responded_at IS NOT NULL')}, "
        f"{ratio(count_if('s.responded_at IS NOT NULL'), 'COUNT(*)')} {SURVEYS} AND s.sent_at "
        f"IS NOT NULL AND {in_period('s.sent_at')} GROUP BY tm.name ORDER BY tm.name")),
    "q5_nps": ("responded_at", (
        f"SELECT c.tier, COUNT(*), {count_if('s.nps >= 9')}, "
        f"{count_if('s.nps >= 7 AND s.nps <= 8')}, {count_if('s.nps <= 6')}, "
        f"CAST({count_if('s.nps >= 9')} - {count_if('s.nps <= 6')} AS FLOAT) * 100 / COUNT(*) "
        f"{SURVEYS} AND s.nps IS NOT NULL AND {ANSWERED} GROUP BY c.tier ORDER BY c.tier")),
    "q6_ces": ("responded_at", (
        f"SELECT t.ticket_type, COUNT(*), AVG(CAST(s.ces AS FLOAT)), {count_if('s.ces >= 5')}, "
        f"{ratio(count_if('s.ces >= 5'), 'COUNT(*)')} {SURVEYS} AND s.ces IS NOT NULL AND "
        f"{ANSWERED} GROUP BY t.ticket_type ORDER BY t.ticket_type")),
}  # fmt: skip

__all__ = ["ANSWERED", "HAND_SQL", "SURVEY", "SURVEYS", "load_surveys"]
