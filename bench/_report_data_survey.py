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

SURVEY = "aftersales__survey_response"
CSAT = {5: 55, 4: 25, 3: 10, 2: 6, 1: 4}
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def load_surveys(engine: sa.Engine, *, seed: int = 11) -> int:
    """Insert the surveys of every ticket already loaded; returns how many."""
    rng = random.Random(seed)
    meta = sa.MetaData()
    with engine.begin() as conn:
        ticket = sa.Table("aftersales__ticket", meta, autoload_with=conn)
        survey = sa.Table(SURVEY, meta, autoload_with=conn)
        columns = ("id", "customer", "team", "status", "resolved_at", "resolution_state",
                   "reopen_count", "created_at")  # fmt: skip
        tickets = conn.execute(
            sa.select(*(ticket.c[n] for n in columns)).order_by(ticket.c.id)
        ).all()
        rows = [row for t in tickets if (row := _survey(t, rng)) is not None]
        keys = sorted({key for row in rows for key in row})  # executemany wants one shape
        if rows:
            conn.execute(survey.insert(), [{k: row.get(k) for k in keys} for row in rows])
    return len(rows)


def _survey(ticket: Any, rng: random.Random) -> dict[str, Any] | None:
    ticket_id, customer, team, status, resolved_at, state, reopens, created = ticket
    resolved_at = _utc(resolved_at) or (_utc(created) + dt.timedelta(days=2))
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
    answer = {
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


__all__ = ["SURVEY", "load_surveys"]
