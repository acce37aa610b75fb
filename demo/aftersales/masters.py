"""Customers and what they own (AFTERSALES §5 "masters", "devices"): customers and contacts,
devices, contracts and the KB articles."""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from demo.aftersales.catalog import (
    COMPANY_WORDS,
    DISTRICTS,
    INDUSTRIES,
    KB_TOPICS,
    MODEL_SHARE,
    MODELS,
    PLACES,
    REGIONS,
)
from demo.aftersales.people import People, chinese_name
from demo.writer import AT, FormWriter


@dataclass
class Device:
    id: int
    model: str
    line: str
    batch: str
    customer: int
    region: str
    province: str
    delivery: date
    install: date
    warranty_end: date
    contract: int | None = None  # service_contract id
    contract_policy: str | None = None  # its sla_policy code
    contract_end: date | None = None
    contract_start: date | None = None


@dataclass
class Customer:
    id: int
    tier: str
    internal: bool
    region: str
    contacts: list[int]
    devices: list[int]


@dataclass
class Masters:
    customers: list[Customer]
    devices: list[Device]  # sorted by installation date
    installs: list[date]  # the same order, for bisect
    models: dict[str, int]
    parts: dict[str, int]
    warehouses: dict[str, int]  # code → id; vans are VAN-<engineer username>
    policies: dict[str, int]  # sla_policy code → id

    def installed_before(self, day: date, rng: random.Random) -> Device | None:
        n = bisect_right(self.installs, day)
        return self.devices[rng.randrange(n)] if n else None


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _address(rng: random.Random, region: str) -> tuple[dict[str, str], str]:
    province, city, _, _ = rng.choice(PLACES[region])
    detail = f"{rng.choice(DISTRICTS)}{rng.randint(1, 999)}号"
    return {
        "province": province,
        "city": city,
        "district": rng.choice(DISTRICTS),
        "detail": detail,
    }, province


def load_customers(
    writer: FormWriter, people: People, rng: random.Random, *, count: int, at: datetime
) -> list[Customer]:
    managers = [p.user_id for p in people.of_role("manager")]
    rows: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    regions: list[str] = []
    for n in range(count):
        region = _pick(rng, REGIONS)
        roll = rng.random()
        kind = "dealer" if roll < 0.05 else "individual" if roll < 0.2 else "company"
        tier = "vip" if rng.random() < 0.05 else "key" if rng.random() < 0.16 else "standard"
        address, _ = _address(rng, region)
        city = address["city"].rstrip("市")
        name = (
            chinese_name(rng)
            if kind == "individual"
            else f"{city}{rng.choice(COMPANY_WORDS)}{rng.choice(['有限公司', '集团', '股份公司'])}"
        )
        rows.append(
            {
                "code": f"DEMO-{n + 1:06d}",
                "name": f"{name} {n + 1:04d}",
                "customer_type": kind,
                "tier": tier,
                "address": address,
                "status": "active",
                "industry": _pick(rng, INDUSTRIES),
                "internal": rng.random() < 0.02,
                "account_manager": rng.choice(managers),
                AT: at,
            }
        )
        regions.append(region)
    ids = writer.insert("customer", rows)
    customers = []
    for n, (cid, row) in enumerate(zip(ids, rows, strict=True)):
        own = []
        for k in range(1 + (rng.random() < 0.6)):
            wechat = rng.random() < 0.7
            contacts.append(
                {
                    "name": chinese_name(rng),
                    "customer": cid,
                    "mobile": f"1{rng.choice('3578')}{n:05d}{k}{rng.randint(100, 999)}",
                    "email": f"c{n + 1}.{k}@example.com",
                    "wechat_openid": f"o{n:06d}{k}" if wechat else None,
                    "role": "reporter" if k else "decision_maker",
                    "is_primary": k == 0,
                    "preferred_channel": "wechat" if wechat else "sms",
                    "survey_opt_out": rng.random() < 0.05,
                    AT: at,
                }
            )
            own.append(len(contacts) - 1)
        customers.append(Customer(cid, row["tier"], row["internal"], regions[n], own, []))
    contact_ids = writer.insert("contact", contacts)
    for c in customers:
        c.contacts = [contact_ids[i] for i in c.contacts]
    return customers


def load_devices(
    writer: FormWriter,
    customers: list[Customer],
    models: dict[str, int],
    rng: random.Random,
    *,
    count: int,
    first: date,
    last: date,
) -> list[Device]:
    """`count` devices produced from `first` to `last` (batches YYMMA/B), delivered 0–60 d after
    production and installed 3–20 d after delivery; mostly at the owner's region."""
    lines = {m[0]: (m[2], m[4]) for m in MODELS}
    span = (last - first).days
    devices, rows = [], []
    for n in range(count):
        model = _pick(rng, MODEL_SHARE)
        made = first + timedelta(days=rng.randrange(span))
        batch = f"{made:%y%m}{'A' if made.day <= 15 else 'B'}"
        delivery = made + timedelta(days=rng.randint(0, 60))
        install = delivery + timedelta(days=rng.randint(3, 20))
        owner = rng.choice(customers)
        region = owner.region if rng.random() < 0.8 else _pick(rng, REGIONS)
        address, province = _address(rng, region)
        _, lng, lat = PLACES[region][0][1], PLACES[region][0][2], PLACES[region][0][3]
        line, warranty = lines[model]
        warranty_end = _add_months(install, warranty) - timedelta(days=1)
        rows.append(
            {
                "code": f"DEV-{n + 1:07d}",
                "name": f"{model} #{n + 1}",
                "serial_no": f"{model.replace('-', '')}-{batch}-{n + 1:05d}",
                "product_model": models[model],
                "batch_no": batch,
                "customer": owner.id,
                "site_address": address,
                "delivery_date": delivery,
                "install_date": install,
                "site_location": {
                    "lng": lng + rng.uniform(-0.2, 0.2),
                    "lat": lat + rng.uniform(-0.2, 0.2),
                    "accuracy": 30.0,
                },
                "warranty_months": warranty,
                "status": "active",
                AT: datetime.combine(delivery, datetime.min.time(), UTC),
            }
        )
        devices.append(
            Device(
                0, model, line, batch, owner.id, region, province, delivery, install, warranty_end
            )
        )
    for device, record_id in zip(devices, writer.insert("device", rows), strict=True):
        device.id = record_id
    by_customer = {c.id: c for c in customers}
    for device in devices:
        by_customer[device.customer].devices.append(device.id)
    return sorted(devices, key=lambda d: (d.install, d.id))


def load_contracts(
    writer: FormWriter,
    customers: list[Customer],
    devices: list[Device],
    policies: dict[str, int],
    rng: random.Random,
    *,
    first: date,
) -> None:
    """Contracts for 25 % of the customers with devices, 30 % of them C7X24 (§5)."""
    by_id = {d.id: d for d in devices}
    rows, covered = [], []
    for c in customers:
        if not c.devices or rng.random() >= 0.25:
            continue
        start = first + timedelta(days=rng.randrange(0, 540))
        end = _add_months(start, 12) - timedelta(days=1)
        seven = rng.random() < 0.3
        kind = "amc" if rng.random() < 0.6 else "extended_warranty"
        rows.append(
            {
                "customer": c.id,
                "contract_type": kind,
                "start_date": start,
                "end_date": end,
                "devices": c.devices,
                "covers_labour": True,
                "covers_parts": kind == "amc",
                "covers_travel": seven,
                "onsite": True,
                "sla_policy": policies["C7X24" if seven else "STD"],
                "amount": Decimal(rng.choice([6000, 12000, 24000, 48000])),
                "pm_frequency_months": 3 if kind == "amc" else None,
                "included_visits": 4,
                "renewal_reminder_days": 60,
                AT: datetime.combine(start, datetime.min.time(), UTC),
            }
        )
        covered.append((c.devices, "C7X24" if seven else "STD", start, end))
    ids = writer.insert("service_contract", rows)
    writer.update("service_contract", [{"id": i, "status": "active"} for i in ids])
    links = []
    for contract_id, (device_ids, policy, start, end) in zip(ids, covered, strict=True):
        links += [{"id": device_id, "contract": contract_id} for device_id in device_ids]
        for device_id in device_ids:
            d = by_id[device_id]
            d.contract, d.contract_policy = contract_id, policy
            d.contract_start, d.contract_end = start, end
    writer.update("device", links)


def load_kb(writer: FormWriter, rng: random.Random, *, count: int, at: datetime) -> None:
    rows = [
        {
            "code": f"KB-{n + 1:04d}",
            "name": f"{KB_TOPICS[n % len(KB_TOPICS)]} ({n + 1})",
            "body": f"<p>{KB_TOPICS[n % len(KB_TOPICS)]}：处理步骤与注意事项。</p>",
            "status": "published" if rng.random() < 0.7 else "draft",
            AT: at,
        }
        for n in range(count)
    ]
    writer.insert("kb_article", rows)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError(day)


__all__ = [
    "Customer",
    "Device",
    "Masters",
    "load_contracts",
    "load_customers",
    "load_devices",
    "load_kb",
]
