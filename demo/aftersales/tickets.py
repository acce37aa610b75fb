"""One ticket's life (AFTERSALES §3.1, §5 "mix" and "handling"): intake (channel, type, texts,
priority, routing, coverage), then a timeline of writes — first response, pause and resume,
visits, resolution, reopen, close or cancel — replayed through the SLA runtime. Produces the
ticket's values, its activity rows and its visits; nothing is stored here."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from demo.aftersales import catalog as c
from demo.aftersales.masters import Customer, Device, Masters
from demo.aftersales.people import People
from demo.aftersales.signals import anomaly_device
from engine.flows.calendar import BusinessCalendar
from engine.flows.sla import CompiledSla

HOUR = 3600


@dataclass
class Generated:
    values: dict[str, Any]
    related: dict[str, Any]
    activities: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    customer: Customer | None = None
    survey: dict[str, Any] | None = None
    statuses: list[tuple[datetime, str]] = field(default_factory=list)  # by the end only


@dataclass
class Context:
    sla: CompiledSla
    calendars: dict[str, BusinessCalendar]
    masters: Masters
    people: People
    end: datetime  # nothing happens after this instant
    cell: list[Device] = field(default_factory=list)  # signal 1's devices
    customers: dict[int, Customer] = field(default_factory=dict)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return math.exp(rng.gauss(math.log(median), sigma))


def _texts(rng: random.Random, kind: str, model: str | None) -> tuple[str, str, str | None]:
    """Subject, description and fault code, with urgent (10 %) and negative (12 %) words."""
    fault = None
    if kind in ("repair", "tech_support", "return_exchange", "recall"):
        faults = next(m[6] for m in c.MODELS if m[0] == model) if model else ["G00"]
        fault = rng.choice(faults) if kind != "return_exchange" else rng.choice(["L01", *faults])
        text = rng.choice(c.FAULT_TEXT[fault])
    elif kind == "complaint":
        fault = rng.choice(["S01", "S02", "S03"])
        text = rng.choice(c.FAULT_TEXT[fault])
    else:
        bank = {
            "consultation": c.CONSULT_TEXT,
            "feedback": c.FEEDBACK_TEXT,
            "installation": c.INSTALL_TEXT,
            "pm": c.PM_TEXT,
        }[kind]
        text = rng.choice(bank)
    if rng.random() < 0.10 and kind not in ("consultation", "feedback", "pm"):
        text += f"，{rng.choice(c.URGENT_WORDS)}！"
    if rng.random() < 0.12 or kind == "complaint":
        text += f"，{rng.choice(c.NEGATIVE_WORDS)}"
    elif rng.random() < 0.1:
        text += f"，{rng.choice(c.POSITIVE_WORDS)}"
    subject = f"{model or ''} {text[:20]}".strip()
    return subject, text, fault


def _sentiment(text: str) -> tuple[str, float]:
    """The default lexicon (§3.1 1b): (positive − negative hits) / max(1, hits)."""
    neg = sum(text.count(w) for w in c.NEGATIVE_WORDS)
    pos = sum(text.count(w) for w in c.POSITIVE_WORDS)
    score = round((pos - neg) / max(1, pos + neg), 2)
    return ("negative" if score <= -0.3 else "positive" if score >= 0.3 else "neutral"), score


def _priority(kind: str, tier: str, text: str) -> str:
    """§3.1 1a: base by type, +1 for VIP, an urgent keyword makes it urgent."""
    if any(w in text for w in c.URGENT_WORDS):
        return "urgent"
    base = c.BASE_PRIORITY.get(kind, "low")
    return c.PRIORITY_UP[base] if tier == "vip" else base


def _route(people: People, v: dict[str, Any], tier: str, line: str | None) -> str:
    """The first matching routing rule's team code (§2.8)."""
    text = f"{v['subject']} {v['description']}".lower()
    for rule in people.rules:
        keywords = [k.strip().lower() for k in str(rule.get("match_keywords") or "").split(",")]
        checks = [
            (rule.get("match_ticket_type"), v["ticket_type"]),
            (rule.get("match_channel"), v["channel"]),
            (rule.get("match_tier"), tier),
            (rule.get("match_product_line"), line),
            (rule.get("match_region"), v["_region"]),
        ]
        if all(not wanted or value in wanted for wanted, value in checks) and (
            not any(keywords) or any(k and k in text for k in keywords)
        ):
            return str(rule["target_team"])
    return "SERVICE-DESK"


def _coverage(device: Device | None, day: Any) -> tuple[str, int | None]:
    if device is None:
        return "none", None
    if day <= device.warranty_end:
        return "warranty", None
    if (
        device.contract
        and device.contract_start
        and device.contract_end
        and device.contract_start <= day <= device.contract_end
    ):
        return "contract", device.contract
    return "out", None


def intake(ctx: Context, rng: random.Random, created: datetime) -> Generated:
    m = ctx.masters
    kind = _pick(rng, c.TYPES)
    channel = "system" if kind in ("pm", "recall") else _pick(rng, c.CHANNELS)
    local_day = created.astimezone(c_tz()).date()
    device = None
    if kind in c.DEVICE_TYPES or rng.random() < 0.6:
        device = m.installed_before(local_day, rng)
    if device is None and kind in c.DEVICE_TYPES:
        kind, channel = "consultation", "phone"
    planted = anomaly_device(ctx.cell, len(m.devices), rng, kind, local_day)
    device = planted or device
    customer = ctx.customers[device.customer] if device else rng.choice(m.customers)
    model = device.model if device else None
    subject, text, fault = _texts(rng, kind, model)
    if planted is not None:
        fault, text = "E07", rng.choice(c.FAULT_TEXT["E07"])
        subject = f"{model} {text[:20]}"
    coverage, contract = _coverage(device, local_day)
    region = device.region if device else customer.region
    province, city, _, _ = c.PLACES[region][0]
    v: dict[str, Any] = {
        "subject": subject,
        "description": text,
        "channel": channel,
        "ticket_type": kind,
        "customer": customer.id,
        "contact": customer.contacts[0] if customer.contacts else None,
        "device": device.id if device else None,
        "product_model": m.models[model] if model else None,
        "site_address": {
            "province": device.province if device else province,
            "city": city,
            "district": "",
            "detail": "",
        },
        "coverage_at_intake": coverage,
        "contract": contract,
        "_region": region,
        "_model": model,
        "_day": local_day,
    }
    v["sentiment"], v["sentiment_score"] = _sentiment(text)
    v["priority"] = _priority(kind, customer.tier, text)
    found = [w for w in (*c.URGENT_WORDS, "固件", "firmware", "升级", "死机") if w in text]
    v["keywords"] = ", ".join(found) or None
    if kind in ("repair", "tech_support") or rng.random() < 0.3:
        v["fault_code"] = fault
    if device and device.line == "controller" and kind == "tech_support":
        kind = v["ticket_type"] = "repair"  # controller support needs screenshots: a repair
    v["team_code"] = _route(ctx.people, v, customer.tier, device.line if device else None)
    related = {
        "customer.tier": customer.tier,
        "device.product_model": v["product_model"],
        "contract.sla_policy.code": device.contract_policy if contract and device else None,
    }
    return Generated(v, related, customer=customer)


def c_tz() -> Any:
    from demo.aftersales.arrivals import SHANGHAI

    return SHANGHAI


__all__ = ["Context", "Generated", "intake"]
