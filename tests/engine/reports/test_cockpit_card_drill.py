"""Every KPI card of the after-sales cockpit drills: card → weekly trend → breakdown by each of
its `drill_down` fields → tickets (AFTERSALES.md §4 "Drill path"), on generated data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.identity.actor import Actor
from engine.registry import DefinitionRegistry
from engine.reports.dashboard_service import DashboardService
from engine.reports.service import ReportService

ADMIN = Actor(user_id=1, username="admin", is_admin=True)
JUNE = {"period": ["2025-06-01", "2025-06-30"]}
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROW_CARDS = {"frt", "art_card", "fcr_card", "ftfr_card", "mttr_card", "onsite_card",
             "response_sla_card", "resolution_sla_card", "reopen_card", "csat_card",
             "nps_card", "ces_card"}  # fmt: skip


def cockpit(service: DashboardService, **kwargs: Any) -> dict[str, dict[str, Any]]:
    payload = service.run(app="aftersales", key="cockpit", actor=ADMIN, values=JUNE, **kwargs)
    return {w["key"]: w for w in payload["widgets"]}


def test_every_card_drills_to_the_tickets(aftersales_data: sa.Engine) -> None:
    runs = ReportService(aftersales_data, registry=DefinitionRegistry(), clock=lambda: NOW)
    service = DashboardService(runs)
    cards = {k: w for k, w in cockpit(service).items() if w["drill_down"] and k in ROW_CARDS}
    assert cards.keys() == ROW_CARDS
    sqlite = aftersales_data.dialect.name == "sqlite"

    def fine(widget: dict[str, Any]) -> bool:  # a median card cannot run on SQLite
        return "error" not in widget or (sqlite and widget["error"]["code"].endswith("unsupported"))

    trends = cockpit(service, drill={key: [key] for key in cards})
    weeks: dict[str, str] = {}
    for key in cards:
        trend = trends[key]
        assert trend["drill"]["level"] == 1 and fine(trend), (key, trend.get("error"))
        if "error" not in trend:
            assert trend["chart_type"] == "line", key
        if trend.get("data", {}).get("rows"):  # the generated data has no rows for some KPIs
            weeks[key] = trend["data"]["rows"][0][0]
    assert {"frt", "art_card", "response_sla_card", "reopen_card"} <= weeks.keys(), weeks
    for depth in range(max(len(w["drill_down"]) for w in cards.values())):
        by = {k: w["drill_down"][depth] for k, w in cards.items()
              if k in weeks and depth < len(w["drill_down"])}  # fmt: skip
        found = cockpit(service, drill={k: [k, weeks[k]] for k in by}, drill_by=by)
        for key, field in by.items():
            assert found[key]["drill"] == {"level": 2, "path": [key, weeks[key]], "by": field}
            assert "error" not in found[key] and found[key]["data"]["rows"], (key, field)
    records = cockpit(service, drill={k: [k, weeks[k], "x"] for k in weeks})
    for key in weeks:
        listing = records[key]["drill"]["records"]
        assert records[key]["drill"]["level"] == 3
        assert listing["filter"]["and"][-1]["field"] == cards[key]["drill_down"][0]
