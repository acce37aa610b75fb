"""Customer health as of the end of the window (§3.9 D, §2.1): the last NPS answer, and the
churn warning with its reasons — 3 complaints in 90 days, a last NPS within 180 days of 6 or
less, or a VIP/key customer with 2 resolution breaches in 90 days. The contract-ending and
negative-sentiment reasons are not computed yet."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from demo.aftersales.tickets import Generated


def customer_rows(generated: list[Generated], end: datetime) -> list[dict[str, Any]]:
    complaints: dict[int, int] = defaultdict(int)
    breaches: dict[int, int] = defaultdict(int)
    nps: dict[int, tuple[datetime, int]] = {}
    tiers: dict[int, str] = {}
    for g in generated:
        if g.customer is None or not g.statuses:
            continue
        cid, v = g.customer.id, g.values
        tiers[cid] = g.customer.tier
        recent = end - g.statuses[0][0] <= timedelta(days=90)
        if recent and v["ticket_type"] == "complaint":
            complaints[cid] += 1
        due = v.get("resolution_by")
        if v.get("resolution_state") == "breached" and due and end - due <= timedelta(days=90):
            breaches[cid] += 1
        s = g.survey
        if s and s.get("nps") is not None and (cid not in nps or s["responded_at"] > nps[cid][0]):
            nps[cid] = (s["responded_at"], int(s["nps"]))
    rows = []
    for cid, tier in sorted(tiers.items()):
        reasons = []
        if complaints[cid] >= 3:
            reasons.append("repeat_complaints")
        last = nps.get(cid)
        if last is not None and end - last[0] <= timedelta(days=180) and last[1] <= 6:
            reasons.append("detractor")
        if tier in ("vip", "key") and breaches[cid] >= 2:
            reasons.append("sla_breaches")
        rows.append({"id": cid, "churn_risk": bool(reasons), "churn_reasons": reasons or None,
                     "last_nps": last[1] if last else None,
                     "last_nps_at": last[0] if last else None})  # fmt: skip
    return rows


__all__ = ["customer_rows"]
