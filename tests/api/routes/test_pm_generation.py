"""Stock, transfer, RMA, complaint and preventive-maintenance forms of the after-sales bundle
through the API, and the pm_generation flow (AFTERSALES.md §3.8, scenario 10) with the job
worker on an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.flows.runtime_env import use_environment
from tests.conftest import ROOT

API = "/api/v1"
FORMS = f"{API}/apps/aftersales/forms"


@pytest.fixture
def aftersales(client: TestClient, migrated_engine: sa.Engine) -> Iterator[str]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(ROOT / "templates" / "aftersales"))
    yield "aftersales"
    use_environment(None)


def _post(client: TestClient, form: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{FORMS}/{form}/records", json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _get(client: TestClient, form: str, record_id: int) -> dict[str, Any]:
    response = client.get(f"{FORMS}/{form}/records/{record_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _me(client: TestClient) -> int:
    me = client.get(f"{API}/auth/me").json()
    return int(me["user"]["id"] if "user" in me else me["id"])


def _part(client: TestClient, code: str, cost: float = 420) -> dict[str, Any]:
    body = {"code": code, "name": code, "barcode": f"BC-{code}", "standard_cost": cost,
            "sale_price": cost * 1.6, "safety_stock": 2}  # fmt: skip
    return _post(client, "spare_part", body)


def _warehouse(client: TestClient, code: str, wh_type: str = "regional") -> dict[str, Any]:
    body = {"code": code, "name": code, "wh_type": wh_type, "region": "east",
            "keeper": _me(client)}  # fmt: skip
    return _post(client, "warehouse", body)


def test_stock_on_hand_is_the_sum_of_append_only_moves(client: TestClient, aftersales: str) -> None:
    part = _part(client, "VK-7")
    hangzhou = _warehouse(client, "WH-HZ")
    stock = _post(client, "stock", {"warehouse": hangzhou["id"], "spare_part": part["id"]})
    assert (stock["min_qty"], stock["standard_cost"], stock["label"]) == (2, 420, "WH-HZ / VK-7")
    receipt = _post(client, "stock_move", {"stock": stock["id"], "qty": 4, "move_type": "receipt"})
    assert (receipt["warehouse"], receipt["spare_part"]) == (hangzhou["id"], part["id"])
    assert receipt["unit_cost"] == 420  # the cost at posting
    _post(client, "stock_move", {"stock": stock["id"], "qty": -1, "move_type": "transfer_out"})
    assert _get(client, "stock", stock["id"])["qty_on_hand"] == 3

    edit = client.patch(
        f"{FORMS}/stock_move/records/{receipt['id']}", json={"qty": 5, "version": 1}
    )
    assert edit.status_code in (405, 409, 422), edit.text
    assert "append" in edit.json()["code"]
    gone = client.delete(f"{FORMS}/stock_move/records/{receipt['id']}")
    assert gone.status_code in (405, 409, 422), gone.text
    again = client.post(
        f"{FORMS}/stock/records", json={"warehouse": hangzhou["id"], "spare_part": part["id"]}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "record.unique-violation"
    zero = client.post(
        f"{FORMS}/stock_move/records", json={"stock": stock["id"], "qty": 0, "move_type": "adjust"}
    )
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["path"] == "qty"


def test_transfer_value_and_checks(client: TestClient, aftersales: str) -> None:
    part = _part(client, "VK-7")
    hangzhou, van = _warehouse(client, "WH-HZ"), _warehouse(client, "VAN-1", "van")
    line = {"spare_part": part["id"], "qty_requested": 1, "unit_cost": 420}
    body = {"request_type": "for_ticket", "from_warehouse": hangzhou["id"],
            "to_warehouse": van["id"], "lines": [line]}  # fmt: skip
    missing_ticket = client.post(f"{FORMS}/transfer_request/records", json=body)
    assert missing_ticket.status_code == 422
    assert [e["path"] for e in missing_ticket.json()["errors"]] == ["ticket"]
    body |= {"request_type": "replenish", "lines": [line, {**line, "qty_requested": 12}]}
    request = _post(client, "transfer_request", body)
    assert request["number"].startswith("TR-") and request["total_cost"] == 5460
    same = client.post(
        f"{FORMS}/transfer_request/records", json={**body, "to_warehouse": hangzhou["id"]}
    )
    assert same.status_code == 422
    assert same.json()["errors"][0]["code"] == "validation.same_warehouse"
    approve = client.patch(
        f"{FORMS}/transfer_request/records/{request['id']}",
        json={"status": "approved", "version": request["version"]},
    )
    assert approve.status_code == 422  # above ¥5,000 an approver is required
    assert [e["path"] for e in approve.json()["errors"]] == ["approver"]
