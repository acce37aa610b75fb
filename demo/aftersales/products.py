"""Products and stock (AFTERSALES §5 "masters", "stock"): the SLA policy records, product
models, spare parts, and the warehouses with their stock rows and opening receipts."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from demo.aftersales.catalog import MODELS, PARTS, PLACES, REGIONS
from demo.aftersales.people import People
from demo.writer import AT, RELATED, FormWriter
from engine.flows.sla import CompiledSla

POLICY_CODES = {"pm": "PM", "complaint": "CMP", "c7x24": "C7X24", "vip": "VIP", "standard": "STD"}


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


__all__ = ["POLICY_CODES", "load_catalog", "load_stock"]
