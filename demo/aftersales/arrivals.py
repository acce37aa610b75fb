"""When tickets arrive (AFTERSALES §5 "arrivals"): +15 % a year, weekday factors, −60 % on
statutory holidays, +40 % in the week after the Spring Festival, peaks at 10:00 and 15:00 with
8 % outside office hours. Instants are UTC; the local day is Asia/Shanghai."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from demo.aftersales.catalog import WEEKDAY
from engine.flows.calendar import BusinessCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = [9, 10, 10, 10, 11, 11, 13, 14, 15, 15, 15, 16, 16, 17]  # two peaks
OFF_HOURS = [7, 8, 18, 19, 20, 21, 22]


def day_weights(cal: BusinessCalendar, first: date, last: date) -> list[tuple[date, float]]:
    days, weights = [], []
    festival_end: date | None = None
    day = first
    while day <= last:
        factor = WEEKDAY[day.weekday()] * 1.15 ** ((day - first).days / 365)
        holiday = day.weekday() < 5 and not cal.local_spans(day)
        if holiday:
            factor *= 0.4
            if day.month in (1, 2):
                festival_end = day
        elif festival_end is not None and (day - festival_end).days <= 7:
            factor *= 1.4
        days.append(day)
        weights.append(factor)
        day += timedelta(days=1)
    return list(zip(days, weights, strict=True))


def arrivals(rng: random.Random, count: int, weights: list[tuple[date, float]]) -> list[datetime]:
    """`count` creation instants, sorted."""
    days = rng.choices([d for d, _ in weights], weights=[w for _, w in weights], k=count)
    out = []
    for day in days:
        hour = rng.choice(OFF_HOURS) if rng.random() < 0.08 else rng.choice(HOURS)
        local = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), SHANGHAI)
        out.append(local.astimezone(UTC))
    return sorted(out)


__all__ = ["SHANGHAI", "arrivals", "day_weights"]
