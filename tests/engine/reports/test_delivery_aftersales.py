"""The after-sales bundle's weekly delivery (operations dashboard, to the executives) composes
on the generated data: its cards and table, and the parts usage rows as an XLSX that opens,
run as an executive; a service manager gets notes instead of parts figures; the import queued
its chain for Monday 08:00 Beijing time."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import sqlalchemy as sa

from engine.identity.service import load_actor
from engine.registry import DefinitionRegistry
from engine.reports.delivery import DELIVERY_JOB, find_delivery
from engine.reports.delivery_content import DeliveryContent, compose_delivery
from engine.reports.service import ReportService
from engine.storage.tables_jobs import job_queue
from engine.storage.uow import UnitOfWork

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_8 = datetime(2025, 12, 29, 8, tzinfo=SHANGHAI).astimezone(UTC)


def test_the_weekly_operations_delivery(
    aftersales_data: sa.Engine, make_user: Callable[..., Any]
) -> None:
    with aftersales_data.connect() as conn:
        keys = conn.execute(
            sa.select(job_queue.c.key).where(job_queue.c.kind == DELIVERY_JOB)
        ).scalars()
        [key] = [k for k in keys if "weekly_parts" in k]
    assert key.startswith("report-delivery:aftersales:operations:weekly_parts@")
    assert key.endswith("T08:00+08:00")

    executive = make_user("exe", roles=("aftersales.executive",))
    manager = make_user("mgr", roles=("aftersales.manager",))
    content = compose(aftersales_data, executive.id)
    assert content.day.isoformat() == "2025-12-29"
    assert content.notes == ()
    cards = [item.title for item in content.items if not item.columns]
    assert cards == ["First-visit parts availability", "Defective return compliance"]
    assert [item.columns != () for item in content.items] == [False, False, True]
    [attachment] = content.attachments
    assert attachment.file_name == "parts_usage.xlsx"
    workbook = openpyxl.load_workbook(io.BytesIO(attachment.content), read_only=True)
    header = next(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert all(isinstance(cell, str) for cell in header)
    notes = compose(aftersales_data, manager.id).notes  # reads field visits, not parts
    assert len(notes) == 2 and all("identity.permission-denied" in n for n in notes)


def compose(engine: sa.Engine, user_id: int) -> DeliveryContent:
    runs = ReportService(engine, registry=DefinitionRegistry(), clock=lambda: MONDAY_8)
    with UnitOfWork(engine) as uow:
        found = find_delivery(uow, app="aftersales", dashboard="operations", key="weekly_parts")
        assert found is not None
        actor = load_actor(uow=uow, user_id=user_id)
        return compose_delivery(
            runs, uow, app="aftersales", dashboard="operations", delivery=found[1], actor=actor
        )
