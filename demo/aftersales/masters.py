"""Master data (AFTERSALES §5 "masters", "devices", "stock"): SLA policy records, product
models, spare parts, warehouses and stock, customers and contacts, devices, contracts, KB."""

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
    PARTS,
    PLACES,
    REGIONS,
)
from demo.aftersales.people import People, chinese_name
from demo.writer import AT, RELATED, FormWriter
from engine.flows.sla import CompiledSla

POLICY_CODES = {"pm": "PM", "complaint": "CMP", "c7x24": "C7X24", "vip": "VIP", "standard": "STD"}


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


def load_catalog(
    writer: FormWriter, sla: CompiledSla, people: People, rng: random.Random
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """SLA policy records, spare parts and product models; their ids by code."""
    policies: list[dict[str, Any]] = []
    for n, p in enumerate(sla.spec.policies):
        targets = [
            {
                "priority": prio,
                "response_min": t.get("response"),
                "resolution_min": t.get("resolution"),
                "onsite_min": t.get("onsite"),
            }
            for prio, t in p.targets.items()
        ]
        policies.append(
            {
                "code": POLICY_CODES.get(p.key, p.key.upper()),
                "name": getattr(p.label, "en", None) or p.key,
                "sequence": (n + 1) * 10,
                "enabled": True,
                "is_default": p.default,
                "condition": p.condition,
                "calendar": p.calendar,
                "targets": targets,
                "reopen_mode": p.reopen_mode,
            }
        )
    policy_ids: dict[str, int] = dict(
        zip(
            [str(row["code"]) for row in policies],
            writer.insert("sla_policy", policies),
            strict=True,
        )
    )
    parts = list(PARTS)
    lines = ["compressor", "purifier", "controller"]
    for n in range(len(PARTS) + 1, 61):
        line = lines[n % 3]
        cost = rng.choice([15, 30, 60, 120, 240, 480])
        parts.append(
            (
                f"P-{n:03d}",
                f"{line} 配件 P-{n:03d}",
                line,
                cost,
                round(cost * 1.6),
                False,
                n % 5 == 0,
            )
        )
    part_rows = [
        {
            "code": code,
            "name": name,
            "barcode": f"69{n:011d}",
            "unit": "pcs",
            "safety_stock": 2,
            "is_serialized": serial,
            "return_required": ret,
            "standard_cost": Decimal(cost),
            "sale_price": Decimal(price),
        }
        for n, (code, name, _, cost, price, serial, ret) in enumerate(parts)
    ]
    part_ids = dict(zip([p[0] for p in parts], writer.insert("spare_part", part_rows), strict=True))
    managers = [p.user_id for p in people.of_role("product")[1:]]  # pm01, pm02
    model_rows = [
        {
            "code": code,
            "name": name,
            "product_line": line,
            "required_skill": skill,
            "product_manager": managers[n % 2],
            "warranty_months": warranty,
            "pm_interval_months": pm,
            "fault_codes": faults,
            "compatible_parts": [part_ids[p[0]] for p in parts if p[2] == line],
        }
        for n, (code, name, line, skill, warranty, pm, faults) in enumerate(MODELS)
    ]
    model_ids = dict(
        zip([m[0] for m in MODELS], writer.insert("product_model", model_rows), strict=True)
    )
    return policy_ids, part_ids, model_ids


def load_stock(
    writer: FormWriter, people: People, parts: dict[str, int], at: datetime
) -> dict[str, int]:
    """Warehouses (central, 7 regional, a defective depot, a van per engineer) with stock rows
    and their opening receipts; ids by code."""
    keepers = [p.user_id for p in people.of_role("warehouse")]
    rows: list[dict[str, Any]] = [
        {"code": "WH-CENTRAL", "name": "中心库", "wh_type": "central", "keeper": keepers[0]}
    ]
    rows += [
        {
            "code": f"WH-R-{r.upper()}",
            "name": f"{PLACES[r][0][1]}区域库",
            "wh_type": "regional",
            "region": r,
            "keeper": keepers[1 + n],
        }
        for n, r in enumerate(REGIONS)
    ]
    rows.append(
        {
            "code": "WH-DEFECTIVE",
            "name": "旧件库",
            "wh_type": "defective",
            "region": "east",
            "keeper": keepers[0],
        }
    )
    ids: dict[str, int] = dict(
        zip([str(r["code"]) for r in rows], writer.insert("warehouse", rows), strict=True)
    )
    vans = [
        {
            "code": f"VAN-{e.username}",
            "name": f"{e.name}个人库",
            "wh_type": "van",
            "region": e.region,
            "keeper": e.user_id,
            "replenish_from": ids["WH-R-" + (e.region or "east").upper()],
        }
        for e in people.of_role("engineer")
    ]
    ids.update(zip([str(v["code"]) for v in vans], writer.insert("warehouse", vans), strict=True))
    stock, quantities = [], []
    for code, wh in ids.items():
        if code == "WH-DEFECTIVE":
            continue
        size = 200 if code == "WH-CENTRAL" else 20 if code.startswith("WH-") else 2
        for part_code, part in parts.items():
            if code.startswith("VAN-") and not part_code.startswith(("VK", "FL", "P-00")):
                continue
            qty = (
                0 if part_code == "VK-7" and code == "WH-R-EAST" else size
            )  # §5: VK-7 short in east
            stock.append(
                {
                    "warehouse": wh,
                    "spare_part": part,
                    "min_qty": 2,
                    "max_qty": size * 2,
                    RELATED: {"warehouse.code": code, "spare_part.code": part_code},
                }
            )
            quantities.append(qty)
    stock_ids = writer.insert("stock", stock)
    writer.insert(
        "stock_move",
        [
            {
                "at": at,
                "stock": s,
                "qty": q,
                "move_type": "receipt",
                "unit_cost": Decimal(0),
                AT: at,
            }
            for s, q in zip(stock_ids, quantities, strict=True)
            if q
        ],
    )
    return ids


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
    "load_catalog",
    "load_contracts",
    "load_customers",
    "load_devices",
    "load_kb",
    "load_stock",
]
