"""The drill path of a KPI card (engine/reports/card_drill.py): card → weekly trend → breakdown
by the chosen dimension → records, with the other filters kept; through the service and the
dashboard API, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from engine.errors import DefinitionError
from engine.forms.service import RecordService
from engine.identity.actor import Actor
from engine.registry import DefinitionRegistry
from engine.reports.cache import DataVersionBumper
from engine.reports.dashboard import check_dashboard
from engine.reports.dashboard_service import DashboardService
from engine.reports.query import ReportQueryError
from engine.reports.service import ReportService
from engine.reports.spec import DashboardSpec, ReportSpec
from engine.storage.uow import UnitOfWork

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
ADMIN = Actor(user_id=1, username="admin", is_admin=True)
FORM = """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true}
  - key: region
    type: select
    options: [{key: east, label: East}, {key: north, label: North}]
  - {key: city, type: text}
  - {key: opened_on, type: date}
  - {key: csat, type: number, decimals: 0}
"""
REPORT = """
key: csat
label: CSAT
dataset: {form: ticket}
filters: [{expr: NOT ISBLANK(csat)}]
dimensions: [{key: region, field: region}]
measures:
  - {key: answered, aggregate: count}
  - {key: good, aggregate: count, filter: csat >= 4}
  - {key: rate, expr: good / answered, format: percent}
chart: {type: bar, y: [rate]}
"""
DASHBOARD = """
key: home
label: Home
widgets:
  - {key: rate_card, report: csat, card: rate, x: 0, y: 0, w: 6, h: 3,
     compare: previous_period, drill_down: [region, city]}
  - {key: plain_card, report: csat, card: answered, x: 6, y: 0, w: 6, h: 3}
  - {key: undated_card, report: csat, card: good, x: 12, y: 0, w: 6, h: 3}
  - {key: by_region, report: csat, x: 0, y: 3, w: 12, h: 6, drill_down: [city]}
filters:
  - key: period
    label: Period
    type: date_range
    bindings: {rate_card: opened_on, plain_card: opened_on, by_region: opened_on}
  - key: region
    label: Region
    type: multiselect
    bindings: {rate_card: region, plain_card: region, undated_card: region}
"""
BUNDLE = {
    "bundle.yaml": "key: card\nname: Card drill test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/ticket.yaml": FORM,
    "reports/csat.yaml": REPORT,
    "dashboards/home.yaml": DASHBOARD,
}
TICKETS = [
    # region, city, opened_on (weeks start Mon 2 and Mon 9 November 2026), csat
    ("east", "sh", date(2026, 11, 2), 5),
    ("east", "sh", date(2026, 11, 3), 2),
    ("east", "hz", date(2026, 11, 8), 4),
    ("north", "bj", date(2026, 11, 4), 1),
    ("east", "hz", date(2026, 11, 10), 5),
    ("north", "bj", date(2026, 11, 11), 5),
]
NOVEMBER = {"period": ["2026-11-01", "2026-11-30"]}


def _install(engine: sa.Engine, folder: Path) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=engine, bundle=load_bundle(folder))


@pytest.fixture
def runs(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> Iterator[ReportService]:
    _install(migrated_engine, tmp_path / "card")
    registry = DefinitionRegistry()
    records = RecordService(db=migrated_engine, registry=registry, listeners=[DataVersionBumper()])
    for region, city, opened_on, csat in TICKETS:
        data = {"subject": "s", "region": region, "city": city,
                "opened_on": opened_on.isoformat(), "csat": csat}  # fmt: skip
        records.create(app="card", form="ticket", data=data, actor=None)
    yield ReportService(migrated_engine, registry=registry, clock=lambda: NOW)


def run(runs: ReportService, **kwargs: Any) -> dict[str, dict[str, Any]]:
    payload = DashboardService(runs).run(app="card", key="home", actor=ADMIN, **kwargs)
    return {w["key"]: w for w in payload["widgets"]}


def rows(widget: dict[str, Any]) -> list[list[Any]]:
    return [row[:2] for row in widget["data"]["rows"]]


def test_card_then_weekly_trend(runs: ReportService) -> None:
    card = run(runs, values=NOVEMBER)["rate_card"]
    assert card["drill"] == {"level": 0, "path": [], "by": "region"}
    assert card["chart"]["value"] == pytest.approx(4 / 6)
    trend = run(runs, values=NOVEMBER, drill={"rate_card": ["rate_card"]})["rate_card"]
    assert trend["drill"]["level"] == 1
    assert trend["chart_type"] == "line"
    weeks = {row[0]: row[-1] for row in trend["data"]["rows"]}  # the rate per week
    assert weeks == {"2026-11-02": pytest.approx(2 / 4), "2026-11-09": pytest.approx(1.0)}


def test_breakdown_by_the_chosen_dimension_then_records(runs: ReportService) -> None:
    path = ["rate_card", "2026-11-02"]
    first = run(runs, values=NOVEMBER, drill={"rate_card": path})["rate_card"]
    assert first["drill"]["by"] == "region"  # the first drill_down field by default
    assert rows(first) == [["east", 3], ["north", 1]]  # answered per region that week
    city = run(runs, values=NOVEMBER, drill={"rate_card": path}, drill_by={"rate_card": "city"})
    assert rows(city["rate_card"]) == [["bj", 1], ["hz", 1], ["sh", 2]]
    records = run(
        runs, values=NOVEMBER, drill={"rate_card": [*path, "sh"]}, drill_by={"rate_card": "city"}
    )["rate_card"]["drill"]
    assert records["level"] == 3
    clauses = records["records"]["filter"]["and"]
    assert {"field": "opened_on", "op": "between", "value": ["2026-11-02", "2026-11-08"]} in clauses
    assert {"field": "city", "op": "eq", "value": "sh"} in clauses
    assert records["records"]["filter_expr"] == "(NOT ISBLANK(csat))"


def test_other_filters_stay_applied_at_every_level(runs: ReportService) -> None:
    east = {**NOVEMBER, "region": ["east"]}
    trend = run(runs, values=east, drill={"rate_card": ["rate_card"]})["rate_card"]
    assert {row[0]: row[1] for row in trend["data"]["rows"]} == {"2026-11-02": 3, "2026-11-09": 1}
    week = run(runs, values=east, drill={"rate_card": ["rate_card", "2026-11-02"]})["rate_card"]
    assert rows(week) == [["east", 3]]
    records = run(runs, values=east, drill={"rate_card": ["rate_card", "2026-11-02", "east"]})
    clauses = records["rate_card"]["drill"]["records"]["filter"]["and"]
    assert {"field": "region", "op": "in", "value": ["east"]} in clauses  # the global filter


def test_a_card_without_drill_fields_goes_from_the_week_to_the_records(
    runs: ReportService,
) -> None:
    found = run(runs, values=NOVEMBER, drill={"plain_card": ["plain_card", "2026-11-09"]})
    assert found["plain_card"]["drill"]["level"] == 2
    assert "records" in found["plain_card"]["drill"]
    # chart widgets keep their dimension chain
    chart = run(runs, values=NOVEMBER, drill={"by_region": ["east"]})["by_region"]
    assert chart["drill"]["level"] == 1 and rows(chart) == [["hz", 2], ["sh", 2]]


@pytest.mark.parametrize(
    ("drill", "drill_by", "code", "path"),
    [
        ({"rate_card": ["c", "2026-11-02"]}, {"rate_card": "subject"},
         "dashboard.bad-drill-dimension", "drill/by"),
        ({"rate_card": ["c", "2026-11-02", "east", "x"]}, {}, "dashboard.drill-too-deep",
         "drill/3"),
        ({"plain_card": ["c", "2026-11-02", "east"]}, {}, "dashboard.drill-too-deep", "drill/2"),
        ({"undated_card": ["c"]}, {}, "dashboard.not-drillable", "drill/0"),
        ({"rate_card": ["c", "last week"]}, {}, "dashboard.not-drillable", "drill/1"),
        ({"by_region": ["east"]}, {"by_region": "city"}, "dashboard.bad-drill-dimension",
         "drill/by"),
    ],
)  # fmt: skip
def test_bad_drill_requests(
    runs: ReportService, drill: Any, drill_by: Any, code: str, path: str
) -> None:
    with pytest.raises(ReportQueryError) as caught:
        run(runs, values=NOVEMBER, drill=drill, drill_by=drill_by)
    assert [(e.code, e.loc) for e in caught.value.errors] == [(code, path)]


def test_a_drillable_card_needs_a_date_binding() -> None:
    spec = DashboardSpec.model_validate(
        {"key": "d", "label": "D", "widgets": [
            {"key": "c", "report": "csat", "card": "rate", "x": 0, "y": 0, "w": 6, "h": 3,
             "drill_down": ["region"]}]}
    )  # fmt: skip
    reports = {"csat": ReportSpec.model_validate(yaml.safe_load(REPORT))}
    with pytest.raises(DefinitionError) as caught:
        check_dashboard(spec, reports=reports, field_exists=lambda _r, _f: True)
    assert [(p.code, p.path) for p in caught.value.problems] == [
        ("dashboard.not-drillable", "/widgets/0/drill_down")
    ]


def test_through_the_api(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> None:
    from fastapi import Depends

    from api.routes import reports
    from api.security import require_actor

    _install(migrated_engine, tmp_path / "card")
    app: Any = client.app
    if not any(getattr(r, "path", "").endswith("/dashboards/{dashboard}/run") for r in app.routes):
        app.include_router(reports.router, prefix="/api/v1", dependencies=[Depends(require_actor)])
    for region, city, opened_on, csat in TICKETS:
        data = {"subject": "s", "region": region, "city": city,
                "opened_on": opened_on.isoformat(), "csat": csat}  # fmt: skip
        assert client.post("/api/v1/apps/card/forms/ticket/records", json=data).status_code == 201
    url = "/api/v1/apps/card/dashboards/home/run"
    body = {
        "filters": NOVEMBER,
        "drill": {"rate_card": {"path": ["c", "2026-11-02"], "by": "city"}},
    }
    widget = {w["key"]: w for w in client.post(url, json=body).json()["widgets"]}["rate_card"]
    assert widget["drill"]["by"] == "city" and widget["drill"]["level"] == 2
    body["drill"] = {"rate_card": {"path": ["c", "2026-11-02", "sh"], "by": "city"}}
    found = {w["key"]: w for w in client.post(url, json=body).json()["widgets"]}
    drill = found["rate_card"]["drill"]
    assert drill["list_url"] == "/api/v1/apps/card/forms/ticket/records"
    assert drill["record_url"] == "/api/v1/apps/card/forms/ticket/records/{id}"
    body["drill"] = {"rate_card": {"path": ["c", "2026-11-02"], "by": "subject"}}
    response = client.post(url, json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "dashboard.bad-drill-dimension"
