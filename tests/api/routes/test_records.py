"""The records REST API on both databases: status codes, problem+json bodies, ETags."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

BASE = "/api/v1/apps/rec/forms"
INJECTION = "'; DELETE FROM rec__tag; -- <script>alert('x')</script>"


@pytest.fixture
def api(client: TestClient, records_app: str) -> TestClient:
    return client


def _post(api: TestClient, form: str, data: dict[str, Any], **kw: Any) -> Any:
    return api.post(f"{BASE}/{form}/records", json=data, **kw)


def test_create_read_and_etag(api: TestClient) -> None:
    created = _post(api, "tag", {"label": INJECTION})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["label"] == INJECTION and body["version"] == 1
    assert set(body) >= {"id", "version", "created_at", "updated_at", "deleted_at", "owner_id"}
    assert created.headers["etag"] == '"1"'
    fetched = api.get(f"{BASE}/tag/records/{body['id']}")
    assert fetched.status_code == 200 and fetched.json() == body


def test_invalid_submission_is_422_with_every_error(api: TestClient) -> None:
    response = _post(api, "ticket", {"subject": "x" * 300, "hours": "lots", "items": [{}]})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    paths = {error["path"] for error in response.json()["errors"]}
    assert {"subject", "hours", "items/0/sku"} <= paths


def test_relation_to_missing_record_is_422(api: TestClient) -> None:
    response = _post(api, "ticket", {"subject": "s", "customer": 777})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "path": "customer",
        "code": "record.missing-relation",
        "message": response.json()["errors"][0]["message"],
    }


def test_patch_with_if_match_and_stale_version(api: TestClient) -> None:
    record = _post(api, "ticket", {"subject": "A"}).json()
    url = f"{BASE}/ticket/records/{record['id']}"
    ok = api.patch(url, json={"subject": "B"}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = api.patch(url, json={"subject": "C", "version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "record.stale-version"
    assert api.get(url).json()["subject"] == "B"
    missing = api.patch(url, json={"subject": "D"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["code"] == "record.version-required"


def test_idempotency_key_header(api: TestClient) -> None:
    headers = {"Idempotency-Key": "abc"}
    first = _post(api, "tag", {"label": "x"}, headers=headers)
    again = _post(api, "tag", {"label": "x"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = _post(api, "tag", {"label": "y"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "record.idempotency-mismatch"


def test_unique_conflict_names_the_field(api: TestClient) -> None:
    assert _post(api, "device", {"serial": "S1"}).status_code == 201
    response = _post(api, "device", {"serial": "S1"})
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["path"]) == (
        "record.unique-violation",
        "serial",
    )


def test_delete_refused_restore_history(api: TestClient) -> None:
    customer = _post(api, "customer", {"name": "C"}).json()
    ticket = _post(api, "ticket", {"subject": "T", "customer": customer["id"]}).json()
    refused = api.delete(f"{BASE}/customer/records/{customer['id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "record.delete-refused"
    assert refused.json()["records"] == [
        {"form": "ticket", "field": "customer", "id": ticket["id"]}
    ]
    url = f"{BASE}/ticket/records/{ticket['id']}"
    deleted = api.delete(url)
    assert deleted.status_code == 200 and deleted.json()["deleted_at"]
    assert api.get(url).status_code == 404
    assert api.get(url, params={"include_deleted": True}).json()["deleted_at"]
    restored = api.post(f"{url}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    history = api.get(f"{url}/history").json()["items"]
    assert [h["action"] for h in history] == ["create", "delete", "restore"]
    assert history[0]["changes"]["subject"] == [None, "T"]


def test_comments(api: TestClient) -> None:
    tag = _post(api, "tag", {"label": "x"}).json()
    url = f"{BASE}/tag/records/{tag['id']}/comments"
    created = api.post(url, json={"body": INJECTION})
    assert created.status_code == 201 and created.json()["body"] == INJECTION
    assert [c["body"] for c in api.get(url).json()["items"]] == [INJECTION]
    assert api.post(url, json={"body": ""}).status_code == 422


def test_bulk_update_and_delete(api: TestClient) -> None:
    ids = [_post(api, "ticket", {"subject": f"t{i}"}).json()["id"] for i in range(3)]
    ok = api.post(f"{BASE}/ticket/records/bulk-update", json={"ids": ids, "changes": {"hours": 1}})
    assert ok.status_code == 200 and ok.json()["applied"] is True
    stale = api.post(
        f"{BASE}/ticket/records/bulk-update",
        json={"ids": ids, "changes": {"hours": 2}, "versions": {str(ids[0]): 1}},
    )
    assert stale.status_code == 409 and stale.json()["applied"] is False
    assert [item["ok"] for item in stale.json()["items"]] == [False, True, True]
    assert api.get(f"{BASE}/ticket/records/{ids[1]}").json()["hours"] == 1
    deleted = api.post(f"{BASE}/ticket/records/bulk-delete", json={"ids": ids})
    assert deleted.status_code == 200
    assert all(item["version"] == 3 for item in deleted.json()["items"])


def test_unknown_form_and_record(api: TestClient) -> None:
    assert api.get(f"{BASE}/nope/records/1").json()["code"] == "record.form-not-found"
    missing = api.get(f"{BASE}/tag/records/12345")
    assert missing.status_code == 404 and missing.json()["code"] == "record.not-found"


def test_schema_of_a_form(api: TestClient) -> None:
    read = api.get(f"{BASE}/ticket/schema")
    assert read.status_code == 200
    assert {"id", "version", "subject"} <= set(read.json()["properties"])
    create = api.get(f"{BASE}/ticket/schema", params={"mode": "create"}).json()
    assert "subject" in create.get("required", [])
    assert api.get(f"{BASE}/nope/schema").status_code == 404


def test_after_sales_ticket_through_the_api(client: TestClient, migrated_engine: Any) -> None:
    from pathlib import Path

    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    root = Path(__file__).resolve().parents[3]
    import_bundle(db=migrated_engine, bundle=load_bundle(root / "templates" / "aftersales"))
    base = "/api/v1/apps/aftersales/forms"
    address = {"province": "浙江省", "city": "杭州市", "district": "西湖区", "detail": "1 号"}
    customer = client.post(
        f"{base}/customer/records",
        json={"code": "C1", "name": "ACME", "customer_type": "company", "address": address},
    )
    assert customer.status_code == 201, customer.text
    contact = client.post(
        f"{base}/contact/records",
        json={"name": "Zhang", "customer": customer.json()["id"], "mobile": "13800138000"},
    )
    assert contact.status_code == 201, contact.text
    ticket = client.post(
        f"{base}/ticket/records",
        json={
            "subject": INJECTION,
            "description": "Paper jams",
            "channel": "phone",
            "ticket_type": "tech_support",
            "priority": "medium",
            "customer": customer.json()["id"],
            "contact": contact.json()["id"],
        },
    )
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    assert body["number"].startswith("WO-") and body["subject"] == INJECTION
    refused = client.delete(f"{base}/customer/records/{customer.json()['id']}")
    assert refused.status_code == 409 and refused.json()["code"] == "record.delete-refused"
