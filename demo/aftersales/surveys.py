"""Satisfaction surveys (§3.5, §5 signal 4): 75 % of resolved tickets are surveyed 24 h after
the first resolution, 35 % answer within 3 days; CSAT 5/4/3/2/1 = 55/25/10/6/4 %, one point
lower on breached or reopened tickets; NPS and CES follow the CSAT."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from demo.aftersales.signals import csat_weights
from demo.aftersales.tickets import Generated


def survey(g: Generated, rng: random.Random, end: datetime, unhappy_agent: int | None) -> None:
    v = g.values
    resolved = v.get("first_resolved_at")
    if resolved is None or g.customer is None or g.customer.internal or not v.get("contact"):
        return
    if rng.random() >= 0.75:
        return
    sent = resolved + timedelta(hours=24)
    if sent > end:
        v["survey_status"] = "scheduled"
        return
    row: dict[str, Any] = {
        "_at": resolved,
        "scheduled_at": sent,
        "sent_at": sent,
        "expires_at": sent + timedelta(days=7),
        "channel": "wechat",
        "customer": v["customer"],
        "contact": v["contact"],
        "team": v["team"],
        "agent": v.get("resolved_by"),
        "includes_nps": rng.random() < 0.5,
    }
    reopened_first = v.get("reopen_count") and v.get("resolved_at") != resolved
    if reopened_first and rng.random() < 0.5:
        row["status"] = "cancelled"
    elif rng.random() < 0.35:
        answered = sent + timedelta(hours=rng.uniform(0.5, 72))
        if answered > end:
            row["status"] = "sent"
        else:
            weights = csat_weights(v.get("resolved_by") == unhappy_agent)
            csat = rng.choices([5, 4, 3, 2, 1], weights=weights)[0]
            if v.get("resolution_state") == "breached" or v.get("reopen_count"):
                csat = max(1, csat - 1)
            row.update(
                status="answered",
                responded_at=answered,
                csat=csat,
                timeliness=csat,
                result_rating=csat,
                ces=max(1, min(7, csat + 2 + rng.choice([-1, 0, 0, 1]))),
            )
            if row["includes_nps"]:
                row["nps"] = {5: rng.choice([9, 10, 10]), 4: rng.choice([7, 8, 9])}.get(
                    csat, rng.randint(0, 6)
                )
            if csat <= 3:
                row["reason_codes"] = [rng.choice(["slow", "not_fixed", "attitude", "price"])]
    else:
        row["status"] = "expired" if row["expires_at"] <= end else "sent"
    v["survey_status"] = row["status"]
    g.survey = row


__all__ = ["survey"]
