"""Nightly backlog snapshots (§4 T1): for each day of the window, the tickets open or paused at
23:59 (Asia/Shanghai), counted per team, region, priority, category and wall-clock aging
bucket, with how many of them were overdue then — what the 23:59 job would have written."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from demo.aftersales.arrivals import SHANGHAI
from demo.aftersales.tickets import Generated

OPEN = {"new": "open", "assigned": "open", "in_progress": "open", "waiting_parts": "open",
        "onsite": "open", "waiting_customer": "paused"}  # fmt: skip
BUCKETS = [(1, "a_lt_1d"), (3, "b_1_3d"), (7, "c_3_7d"), (30, "d_7_30d")]


def _bucket(age: timedelta) -> str:
    days = age.total_seconds() / 86_400
    return next((name for limit, name in BUCKETS if days < limit), "e_gt_30d")


def snapshot_rows(generated: list[Generated], first: date, last: date) -> list[dict[str, Any]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    overdue: Counter[tuple[Any, ...]] = Counter()
    for g in generated:
        v, statuses = g.values, g.statuses
        created = statuses[0][0]
        day = max(first, created.astimezone(SHANGHAI).date())
        while day <= last:
            moment = datetime.combine(day, time(23, 59), SHANGHAI)
            status = _status_at(statuses, moment)
            if status is None:  # not created yet on this day cannot happen after `day`'s start
                day += timedelta(days=1)
                continue
            category = OPEN.get(status)
            if category is None and status in ("closed", "cancelled"):
                break  # closed for good
            if category is not None:
                key = (day, v.get("team"), v.get("region") or v.get("_region"), v["priority"],
                       category, _bucket(moment - created))  # fmt: skip
                counts[key] += 1
                late = [v.get("resolution_by"), None if v.get("first_response_at") and
                        v["first_response_at"] <= moment else v.get("response_by")]  # fmt: skip
                if any(due is not None and due < moment for due in late):
                    overdue[key] += 1
            day += timedelta(days=1)
    return [{"snapshot_date": k[0], "team": k[1], "region": k[2], "priority": k[3],
             "category": k[4], "aging_bucket": k[5], "tickets": n, "overdue": overdue[k],
             "_at": datetime.combine(k[0], time(23, 59), SHANGHAI)}
            for k, n in sorted(counts.items(), key=lambda item: repr(item[0]))]  # fmt: skip


def _status_at(statuses: list[tuple[datetime, str]], moment: datetime) -> str | None:
    found = None
    for at, status in statuses:
        if at > moment:
            break
        found = status
    return found


__all__ = ["snapshot_rows"]
