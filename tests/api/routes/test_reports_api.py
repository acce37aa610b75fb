"""The reports API: run, ad-hoc query, dashboards, export, caching through real writes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import Depends
from fastapi.testclient import TestClient

from api.routes import reports
from api.security import require_actor
from engine.reports.cache import DataVersionBumper
from engine.storage.uow import UnitOfWork

BASE = "/api/v1/apps/rpt"

BUNDLE = {
    "bundle.yaml": "key: rpt\nname: Reports API test\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/ticket.yaml": """
key: ticket
label: Ticket
fields:
  - {key: subject, type: text, required: true}
  - key: region
    type: select
    options: [{key: east, label: East}, {key: north, label: North}]
  - {key: opened_on, type: date}
  - {key: hours, type: number, decimals: 1}
""",
    "roles/viewer.yaml": """
key: viewer
label: Viewer
permissions:
  - {form: ticket, actions: [read], scope: all}
""",
    "reports/by_region.yaml": """
key: by_region
label: By region
dataset: {form: ticket}
dimensions: [{key: region, field: region}]
measures:
  - {key: tickets, aggregate: count}
  - {key: hours, aggregate: sum, field: hours}
sort: [{by: region}]
chart: {type: combo, y: [tickets], secondary_y: [hours]}
""",
    "dashboards/home.yaml": """
key: home
label: Home
refresh_seconds: 30
widgets:
  - {key: regions, report: by_region, x: 0, y: 0, w: 12, h: 6, drill_down: [subject]}
filters:
  - {key: region, label: Region, type: select, bindings: {regions: region}}
""",
    "dashboards/broken.yaml": """
key: broken
label: Broken
widgets:
  - {key: regions, report: by_region, x: 0, y: 0, w: 12, h: 6}
filters:
  - {key: region, label: Region, type: select, bindings: {regions: nowhere}}
""",
}


def _wire(client: TestClient) -> None:
    """Include the reports router and the cache listener unless the app already does."""
    app: Any = client.app
    if not any(getattr(r, "path", "").endswith("/reports/query") for r in app.routes):
        app.include_router(reports.router, prefix="/api/v1", dependencies=[Depends(require_actor)])
    listeners = app.state.record_listeners
    if not any(isinstance(listener, DataVersionBumper) for listener in listeners):
        listeners.append(DataVersionBumper())


@pytest.fixture
def api(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> TestClient:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = tmp_path / "rpt"
    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    _wire(client)
    for region, hours in (("east", 1.5), ("east", 2), ("north", 4)):
        data = {"subject": "s", "region": region, "opened_on": "2026-11-02", "hours": hours}
        response = client.post(f"{BASE}/forms/ticket/records", json=data)
        assert response.status_code == 201, response.text
    return client


def test_run_report_then_cached(api: TestClient) -> None:
    first = api.post(f"{BASE}/reports/by_region/run", json={})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["data"]["rows"] == [["east", 2, 3.5], ["north", 1, 4]]
    assert [s["type"] for s in body["chart"]["series"]] == ["bar", "line"]
    assert body["cached"] is False
    assert api.post(f"{BASE}/reports/by_region/run", json={}).json()["cached"] is True


def test_write_through_the_api_invalidates(api: TestClient) -> None:
    api.post(f"{BASE}/reports/by_region/run", json={})
    data = {"subject": "s", "region": "north", "hours": 1}
    assert api.post(f"{BASE}/forms/ticket/records", json=data).status_code == 201
    body = api.post(f"{BASE}/reports/by_region/run", json={}).json()
    assert body["cached"] is False
    assert body["data"]["rows"][1] == ["north", 2, 5]


def test_run_with_filters_and_bad_filters(api: TestClient) -> None:
    body = {"filters": [{"field": "region", "op": "eq", "value": "north"}]}
    response = api.post(f"{BASE}/reports/by_region/run", json=body)
    assert response.json()["data"]["rows"] == [["north", 1, 4]]
    injection = {"filters": [{"field": "region", "op": "eq", "value": "x' OR 1=1 --"}]}
    assert api.post(f"{BASE}/reports/by_region/run", json=injection).json()["data"]["rows"] == []
    unknown = {"filters": [{"field": "nope", "op": "eq", "value": 1}]}
    response = api.post(f"{BASE}/reports/by_region/run", json=unknown)
    assert response.status_code == 422
    assert response.json()["code"] == "report.unknown-field"
    assert response.json()["errors"][0]["path"] == "/filters/0/field"


def test_unknown_report_is_404(api: TestClient) -> None:
    response = api.post(f"{BASE}/reports/nope/run", json={})
    assert response.status_code == 404 and response.json()["code"] == "report.not-found"


def test_ad_hoc_query(api: TestClient) -> None:
    spec = {
        "key": "adhoc",
        "label": "Ad hoc",
        "dataset": {"form": "ticket"},
        "measures": [{"key": "n", "aggregate": "count"}],
        "chart": {"type": "kpi"},
    }
    response = api.post(f"{BASE}/reports/query", json={"report": spec})
    assert response.status_code == 200, response.text
    assert response.json()["chart"]["value"] == 3
    spec["dimensions"] = [{"key": "d", "field": "subject", "grain": "month"}]
    response = api.post(f"{BASE}/reports/query", json={"report": spec})
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == "/dimensions/0/grain"


def test_dashboard_run(api: TestClient) -> None:
    body = {"filters": {"region": "east"}}
    response = api.post(f"{BASE}/dashboards/home/run", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["refresh_seconds"] == 30
    assert payload["widgets"][0]["data"]["rows"] == [["east", 2, 3.5]]
    response = api.post(f"{BASE}/dashboards/broken/run", json={})
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert (problem["code"], problem["path"]) == (
        "dashboard.unknown-field",
        "/filters/0/bindings/regions",
    )
    assert api.post(f"{BASE}/dashboards/nope/run", json={}).status_code == 404


def test_drill_ends_in_the_records_list(api: TestClient) -> None:
    body = {"filters": {"region": "east"}, "drill": {"regions": ["east"]}}
    widget = api.post(f"{BASE}/dashboards/home/run", json=body).json()["widgets"][0]
    assert widget["data"]["rows"] == [["s", 2, 3.5]]
    body["drill"] = {"regions": ["east", "s"]}
    widget = api.post(f"{BASE}/dashboards/home/run", json=body).json()["widgets"][0]
    records = widget["drill"]["records"]
    params = {"filter": json.dumps(records["filter"])}
    response = api.get(f"{BASE}/forms/{records['form']}/records", params=params)
    assert response.status_code == 200, response.text
    assert sorted(item["hours"] for item in response.json()["items"]) == [1.5, 2]


def test_export_csv_and_xlsx(api: TestClient) -> None:
    filters = json.dumps([{"field": "region", "op": "eq", "value": "east"}])
    response = api.get(f"{BASE}/reports/by_region/export", params={"filters": filters})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [["region", "tickets", "hours"], ["east", "2", "3.5"]]
    response = api.get(f"{BASE}/reports/by_region/export", params={"format": "xlsx"})
    assert response.status_code == 200 and response.content[:2] == b"PK"
    response = api.get(f"{BASE}/reports/by_region/export", params={"filters": "{bad"})
    assert response.status_code == 422
    audit = api.get("/api/v1/audit", params={"action": "report.export"}).json()
    exports = [e for e in audit["items"] if e["action"] == "report.export"]
    assert len(exports) == 2 and exports[0]["target_key"].endswith(".by_region")


def test_export_needs_permission(
    api: TestClient, make_user: Callable[..., Any], uow_factory: Callable[[], UnitOfWork]
) -> None:
    from engine.identity.service import load_actor
    from engine.identity.tokens import create_token

    user = make_user("viewer1", roles=("rpt.viewer",))
    with uow_factory() as uow:
        token = create_token(uow=uow, actor=load_actor(uow=uow, user_id=user.id), name="t")
        uow.commit()
    headers = {"Authorization": f"Bearer {token.token}"}
    response = api.get(f"{BASE}/reports/by_region/export", headers=headers)
    assert response.status_code == 403
    assert api.post(f"{BASE}/reports/by_region/run", json={}, headers=headers).status_code == 200
