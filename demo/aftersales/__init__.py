"""The after-sales demo generator (AFTERSALES.md §5), named by templates/aftersales/demo.yaml
(`generator: demo.aftersales`). `load` writes everything in one transaction; a second run finds
the first demo customer and does nothing. docs/demo-data.md lists what is generated."""

from __future__ import annotations

import io
import random
import struct
import zlib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from demo.aftersales.arrivals import SHANGHAI, arrivals, day_weights
from demo.aftersales.backlog import snapshot_rows
from demo.aftersales.churn import customer_rows
from demo.aftersales.masters import (
    Masters,
    load_contracts,
    load_customers,
    load_devices,
    load_kb,
)
from demo.aftersales.people import load_people, staff_rows
from demo.aftersales.products import POLICY_CODES, load_catalog, load_stock
from demo.aftersales.signals import UNHAPPY_AGENT, anomaly_cell
from demo.aftersales.surveys import survey
from demo.aftersales.tickets import Context, Generated, intake
from demo.aftersales.timeline import live
from demo.settings import DemoResult, DemoSettings
from demo.writer import AT, RELATED, FormWriter
from engine.flows.sla_store import SlaDefinitions
from engine.storage.files import FileStore
from engine.storage.uow import UnitOfWork

APP = "aftersales"
MARKER = "DEMO-000001"  # the first demo customer's code


def already_loaded(writer: FormWriter) -> bool:
    table = writer.table("customer")
    query = sa.select(table.c.id).where(table.c.code == MARKER)
    return writer.uow.conn.execute(query).first() is not None


def load(db: sa.Engine | sa.Connection, settings: DemoSettings, *, files: Path) -> DemoResult:
    """Generate and store the demo data unless it is there; `files`: the stored-files root."""
    first = _months_back(settings.end_date, settings.months)
    end = datetime.combine(settings.end_date + timedelta(days=1), time(0), SHANGHAI)
    end = end.astimezone(UTC) - timedelta(seconds=1)
    opening = datetime.combine(first - timedelta(days=400), time(0), UTC)
    with UnitOfWork(db) as uow:
        writer = FormWriter(uow, app=APP, now=end)
        if already_loaded(writer):
            return DemoResult(loaded=False, counts={})
        rng = random.Random(settings.seed)
        slas = SlaDefinitions()
        found = slas.one(uow, app=APP, key="ticket")
        if found is None:
            raise LookupError("the app has no ticket SLA")
        sla, calendars = found[0], slas.calendars(uow, app=APP)
        n = settings.tickets
        people = load_people(writer, rng, tickets=n)
        policies, parts, models = load_catalog(writer, sla, people, rng)
        warehouses = load_stock(writer, people, parts, opening)
        vans = {k.removeprefix("VAN-"): i for k, i in warehouses.items() if k.startswith("VAN-")}
        writer.insert("staff", staff_rows(people, vans, rng))
        customers = load_customers(writer, people, rng, count=max(40, n // 25), at=opening)
        devices = load_devices(
            writer,
            customers,
            models,
            rng,
            count=max(50, n * 9 // 10),
            first=first - timedelta(days=365),
            last=settings.end_date - timedelta(days=90),
        )
        load_contracts(writer, customers, devices, policies, rng, first=first - timedelta(days=180))
        load_kb(writer, rng, count=max(30, n // 5000), at=opening)
        masters = Masters(
            customers, devices, [d.install for d in devices], models, parts, warehouses, policies
        )
        ctx = Context(sla, calendars, masters, people, end, anomaly_cell(devices),
                      {c.id: c for c in customers})  # fmt: skip
        unhappy = people.by_username.get(UNHAPPY_AGENT)
        generated = []
        weights = day_weights(calendars["cn_8x5"], first, settings.end_date)
        for created in arrivals(rng, n, weights):
            g = intake(ctx, rng, created)
            live(ctx, g, rng, created)
            survey(g, rng, end, unhappy.user_id if unhappy else None)
            generated.append(g)
        counts = _store(writer, generated, policies, FileStore(uow.conn, root=files))
        writer.update("customer", customer_rows(generated, end))
        snapshots = snapshot_rows(generated, first, settings.end_date)
        counts["backlog_snapshots"] = len(
            writer.insert("backlog_snapshot", snapshots, validate=False)
        )
        counts.update(customers=len(customers), devices=len(devices), users=len(people.by_username))
        uow.commit()
    return DemoResult(loaded=True, counts=counts)


def _store(
    writer: FormWriter, generated: list[Generated], policies: dict[str, int], files: FileStore
) -> dict[str, int]:
    tickets = []
    for g in generated:
        v = {k: x for k, x in g.values.items() if not k.startswith("_") and k != "team_code"}
        v["sla_policy"] = policies.get(POLICY_CODES.get(v.get("sla_policy_key") or "", ""))
        v[AT], v[RELATED] = g.activities[0]["_at"], g.related
        tickets.append(v)
    ids = writer.insert("ticket", tickets)
    activities = [
        {**a, "ticket": i} for g, i in zip(generated, ids, strict=True) for a in g.activities
    ]
    writer.insert("ticket_activity", activities, validate=False)
    surveys = [{**g.survey, "ticket": i} for g, i in zip(generated, ids, strict=True) if g.survey]
    writer.insert("survey_response", surveys)
    visits = _visits(writer, generated, ids, files)
    return {
        "tickets": len(ids),
        "activities": len(activities),
        "surveys": len(surveys),
        "visits": visits,
    }


def _visits(
    writer: FormWriter, generated: list[Generated], ticket_ids: list[int], files: FileStore
) -> int:
    """First visits, then revisits (which name the visit they follow)."""
    photo = files.put(
        stream=io.BytesIO(_png()),
        name="demo.png",
        content_type="image/png",
        actor=None,
        max_bytes=1 << 20,
    ).ref()
    proof = {
        "photos_before": [photo],
        "photos_after": [photo],
        "customer_signature": [photo],
        "signer_name": "客户",
    }
    stored: dict[tuple[int, int], int] = {}
    total = 0
    for wave in (0, 1):
        rows, keys = [], []
        for g, ticket in zip(generated, ticket_ids, strict=True):
            for n, visit in enumerate(g.visits):
                previous = visit["_previous"]
                if (previous is None) != (wave == 0):
                    continue
                row: dict[str, Any] = {k: x for k, x in visit.items() if k != "_previous"}
                row["ticket"] = ticket
                if previous is not None:
                    row["is_revisit_of"] = stored[(ticket, previous)]
                    row[RELATED] = {"is_revisit_of.sequence": 1}
                if row["status"] == "completed":
                    row.update(proof, signed_at=row["check_out_at"])
                if row.get("check_in_at"):
                    row["check_in_location"] = {"lng": 0.0, "lat": 0.0, "accuracy": 20.0}
                rows.append(row)
                keys.append((ticket, n))
        stored.update(zip(keys, writer.insert("field_visit", rows), strict=True))
        total += len(rows)
    return total


def _png() -> bytes:
    """A 1×1 grey PNG: the stand-in for every visit photo and signature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def _months_back(end: date, months: int) -> date:
    """The first day of the window of `months` whole months ending on `end`'s month."""
    month = end.month - months + 1
    year = end.year + (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1)


__all__ = ["MARKER", "already_loaded", "load"]
