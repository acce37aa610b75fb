"""The after-sales cockpit (templates/aftersales/dashboards/cockpit.yaml) on generated data:
it passes the dashboard checks, every widget runs, filters and clicks narrow it, and a
second load comes from the cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.identity.actor import Actor
from engine.registry import DefinitionRegistry
from engine.reports.dashboard import Click
from engine.reports.dashboard_service import DashboardService
from engine.reports.service import ReportService

ADMIN = Actor(user_id=1, username="admin", is_admin=True)
YEAR = {"period": ["2025-01-01", "2025-12-31"]}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def cockpit(engine: sa.Engine, **kwargs: Any) -> dict[str, dict[str, Any]]:
    runs = kwargs.pop("runs", None) or ReportService(
        engine, registry=DefinitionRegistry(), clock=lambda: NOW
    )
    payload = DashboardService(runs).run(app="aftersales", key="cockpit", actor=ADMIN, **kwargs)
    return {w["key"]: w for w in payload["widgets"]}


def test_every_widget_runs(aftersales_data: sa.Engine) -> None:
    widgets = cockpit(aftersales_data, values=YEAR)
    assert {k: w["error"] for k, w in widgets.items() if "error" in w} == {}
    assert len(widgets) == 14
    assert widgets["frt"]["chart"]["kind"] == "kpi"
    assert widgets["frt"]["chart"]["value"] > 0
    assert widgets["failure_heatmap"]["chart"]["series"][0]["type"] == "heatmap"
    assert widgets["backlog"]["chart"]["series"][0]["stack"] == "total"
    assert widgets["top_faults"]["data"]["others"] is True


def test_filters_and_clicks_narrow_the_page(aftersales_data: sa.Engine) -> None:
    all_regions = cockpit(aftersales_data, values=YEAR)
    east = cockpit(aftersales_data, values={**YEAR, "region": ["east"]})
    assert 0 < east["inflow"]["data"]["rows"][0][1] < all_regions["inflow"]["data"]["rows"][0][1]
    clicked = cockpit(aftersales_data, values=YEAR, clicks=[Click("complaints", "east")])
    assert clicked["inflow"]["data"] == east["inflow"]["data"]


def test_second_load_is_cached(aftersales_data: sa.Engine) -> None:
    runs = ReportService(aftersales_data, registry=DefinitionRegistry(), clock=lambda: NOW)
    cockpit(aftersales_data, values=YEAR, runs=runs)
    again = cockpit(aftersales_data, values=YEAR, runs=runs)
    assert all(w["cached"] for w in again.values() if "chart" in w)


def test_drill_from_a_bar_to_the_tickets(aftersales_data: sa.Engine) -> None:
    widgets = cockpit(aftersales_data, values=YEAR, drill={"complaints": ["east"]})
    assert widgets["complaints"]["drill"]["level"] == 1
    assert widgets["complaints"]["chart"]["xAxis"]["data"]
    widgets = cockpit(aftersales_data, values=YEAR, drill={"complaints": ["east", 1]})
    records = widgets["complaints"]["drill"]["records"]
    assert records["form"] == "ticket"
    assert {"field": "team", "op": "eq", "value": 1} in records["filter"]["and"]
