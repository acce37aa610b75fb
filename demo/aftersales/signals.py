"""The §5 signals the generator plants so the cockpit has something to find (first cut: 1
without its IR, 2 without the post-holiday clusters, 3, and 4's agent A-07)."""

from __future__ import annotations

import random
from datetime import date

from demo.aftersales.masters import Device

ANOMALY_CELL = ("AC-300", "2406B", "east")  # signal 1
ANOMALY_FROM, RECALL_RELEASE = date(2025, 3, 1), date(2025, 9, 30)
STRESS_REGION, STRESS_FROM, STRESS_TO = "southwest", date(2025, 6, 1), date(2025, 8, 31)
FIRMWARE_FIX = date(2025, 7, 1)  # signal 3
UNHAPPY_AGENT = "a07"  # signal 4


def anomaly_cell(devices: list[Device]) -> list[Device]:
    return [d for d in devices if (d.model, d.batch, d.region) == ANOMALY_CELL]


def anomaly_device(
    cell: list[Device], installed: int, rng: random.Random, kind: str, day: date
) -> Device | None:
    """Signal 1: a repair of the anomaly window goes to the cell often enough for its E07
    failure rate to be about 6× the model baseline: E07 is about a quarter of a compressor's
    repairs, so 5 extra baselines are 5 × 1/4 of the cell's share of all devices."""
    if kind != "repair" or not ANOMALY_FROM <= day <= RECALL_RELEASE or not installed:
        return None
    live = [d for d in cell if d.install <= day]
    if not live or rng.random() >= 1.25 * len(live) / installed:
        return None
    return rng.choice(live)


def stress(region: str, day: date) -> float:
    """Signal 2: the southwest field team is understaffed Jun–Aug 2025: everything is slower."""
    return 2.0 if region == STRESS_REGION and STRESS_FROM <= day <= STRESS_TO else 1.0


def reopen_rate(model: str | None, fault: str | None, day: date) -> float:
    """Signal 3: ≈ 6 % overall; IC-10 F01 ≈ 18 % until the firmware fix, then ≈ 5 %."""
    if model == "IC-10" and fault == "F01":
        return 0.18 if day < FIRMWARE_FIX else 0.05
    return 0.06


def csat_weights(unhappy: bool) -> list[int]:
    """Signal 4: CSAT 5/4/3/2/1 = 55/25/10/6/4 %; agent A-07's ≈ 65 % satisfied."""
    return [40, 35, 12, 8, 5] if unhappy else [55, 25, 10, 6, 4]


__all__ = ["UNHAPPY_AGENT", "anomaly_cell", "anomaly_device", "csat_weights", "reopen_rate",
           "stress"]  # fmt: skip
