"""The cockpit's alert strip (templates/aftersales/dashboards/cockpit.yaml, reports a_*.yaml)
through the dashboard API with a fixed clock, on both databases: tickets due within 2
business hours on their own calendar (CN-8x5 over the lunch break and the evening, 7x24),
breached open tickets, the L3 list, anomaly alerts and new churn warnings of the last 7 days.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.registry import DefinitionRegistry
from engine.reports.cache import ResultCache
from engine.reports.service import ReportService
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import _report_data as report_data  # type: ignore[import-not-found]  # noqa: E402

URL = "/api/v1/apps/aftersales/dashboards/cockpit/run"
SHANGHAI = ZoneInfo("Asia/Shanghai")
STRIP = ("due_soon_card", "breached_card", "l3_card", "anomalies_card", "churn_new_card")


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


MONDAY_1130 = local(6, 9, 11, 30)  # CN-8x5: + 2 bh = 14:30 (lunch 12-13); 7x24: 13:30
MONDAY_1700 = local(6, 9, 17)  # CN-8x5: + 2 bh = Tue 10:00 (evening off); 7x24: 19:00
OPEN = {"status": "in_progress", "status_category": "open"}
# number: (policy, columns); response_by/resolution_by on the Shanghai clock
TICKETS: dict[str, tuple[str, dict[str, Any]]] = {
    "lunch": ("standard", {"response_by": local(6, 9, 13, 15), "region": "east"}),  # 45 bmin
    "resolving": ("standard", {"response_by": local(6, 9, 10), "resolution_by": local(6, 9, 14),
                               "first_response_at": local(6, 9, 9, 40), "region": "east"}),
    "three_bh": ("standard", {"response_by": local(6, 9, 15, 30), "region": "east"}),
    "round_clock": ("c7x24", {"response_by": local(6, 9, 14, 15), "region": "north"}),
    "round_soon": ("c7x24", {"response_by": local(6, 9, 13), "region": "north"}),
    "evening": ("standard", {"response_by": local(6, 10, 9, 30), "region": "east"}),
    "paused": ("standard", {"response_by": local(6, 9, 8), "resolution_by": local(6, 9, 13, 15),
                            "first_response_at": local(6, 9, 7), "status": "waiting_customer",
                            "status_category": "paused"}),
    "breached_l3": ("standard", {"response_by": local(6, 6, 10), "response_state": "breached",
                                 "escalation_level": 3, "region": "north"}),
    "closed_l3": ("standard", {"resolution_state": "breached", "escalation_level": 3,
                               "status": "closed", "status_category": "closed"}),
}  # fmt: skip


def _insert(engine: sa.Engine) -> None:
    meta = sa.MetaData()
    stamp = {"created_at": local(6, 1, 9), "updated_at": local(6, 1, 9), "version": 1}
    with engine.begin() as conn:
        ticket = sa.Table("aftersales__ticket", meta, autoload_with=conn)
        for number, (policy, columns) in TICKETS.items():  # rows of different columns
            values = {
                **stamp,
                **OPEN,
                "number": number,
                "sla_policy_key": policy,
                "priority": "medium",
                "response_state": "running",
                "escalation_level": 0,
            }
            conn.execute(ticket.insert().values({**values, **columns}))  # fmt: skip
        request = sa.Table("aftersales__improvement_request", meta, autoload_with=conn)
        conn.execute(request.insert(), [
            {**stamp, "code": code, "name": code, "source": source, "created_at": created}
            for code, source, created in [
                ("IR-anomaly", "anomaly_rule", local(6, 5, 2)),  # the nightly run: an alert
                ("IR-cluster-old", "threshold_rule", local(5, 20, 10)),  # older than 7 d
                ("IR-manual", "manual", local(6, 8, 10)),  # not raised by a rule
            ]])  # fmt: skip
        customer = sa.Table("aftersales__customer", meta, autoload_with=conn)
        conn.execute(customer.insert(), [
            {**stamp, "code": code, "name": code, "churn_risk": risk, "internal": internal,
             "region": "east", "updated_at": updated}
            for code, risk, internal, updated in [
                ("C-new", True, False, local(6, 7, 10)),
                ("C-old", True, False, local(5, 2, 10)),
                ("C-calm", False, False, local(6, 8, 10)),
                ("C-test", True, True, local(6, 8, 10)),
            ]])  # fmt: skip


@pytest.fixture
def strip(client: TestClient, migrated_engine: sa.Engine) -> tuple[TestClient, list[datetime]]:
    report_data.install(migrated_engine)
    _insert(migrated_engine)
    clock = [MONDAY_1130]
    app: Any = client.app
    app.state.report_runs = ReportService(
        migrated_engine, registry=DefinitionRegistry(), cache=ResultCache(), clock=lambda: clock[0]
    )
    return client, clock


def run(client: TestClient, **body: Any) -> dict[str, dict[str, Any]]:
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    return {w["key"]: w for w in response.json()["widgets"]}


def numbers(widget: dict[str, Any], column: str = "number") -> list[Any]:
    keys = [c["key"] for c in widget["data"]["columns"]]
    return [row[keys.index(column)] for row in widget["data"]["rows"]]


def test_the_strip_now(strip: tuple[TestClient, list[datetime]]) -> None:
    client, _ = strip
    widgets = run(client)
    assert {k: widgets[k]["chart"]["value"] for k in STRIP} == {
        "due_soon_card": 3, "breached_card": 1, "l3_card": 1, "anomalies_card": 1,
        "churn_new_card": 1,
    }  # fmt: skip
    # soonest first; "resolving" is answered, so its resolution deadline is the pending one
    assert numbers(widgets["due_soon"]) == ["round_soon", "lunch", "resolving"]
    assert numbers(widgets["due_soon"], "clock") == ["response", "response", "resolution"]
    assert numbers(widgets["breached"]) == ["breached_l3"]
    assert numbers(widgets["l3"]) == ["breached_l3"]
    assert numbers(widgets["anomalies"], "code") == ["IR-anomaly"]
    assert numbers(widgets["churn_new"], "code") == ["C-new"]


def test_the_strip_ignores_the_period_but_not_the_region(
    strip: tuple[TestClient, list[datetime]],
) -> None:
    client, _ = strip
    widgets = run(client, filters={"period": ["2024-01-01", "2024-01-31"], "region": ["east"]})
    assert numbers(widgets["due_soon"]) == ["lunch", "resolving"]
    assert widgets["breached_card"]["chart"]["value"] == 0  # breached_l3 is in north
    assert widgets["anomalies_card"]["chart"]["value"] == 1  # requests have no region
    assert widgets["churn_new_card"]["chart"]["value"] == 1


def test_the_window_moves_with_the_clock(strip: tuple[TestClient, list[datetime]]) -> None:
    client, clock = strip
    assert run(client)["due_soon_card"]["chart"]["value"] == 3
    clock[0] = MONDAY_1700  # the 11:30 result must not come back from the cache
    widgets = run(client)
    assert widgets["due_soon_card"]["cached"] is False
    assert numbers(widgets["due_soon"]) == ["evening"]  # Tue 09:30: 1 bh today + 30 bmin
