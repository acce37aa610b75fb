"""One JSON shape: a list item, a kanban item and GET of the record are the same object."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.bundles import load_bundle
from engine.installer import import_bundle

OPTIONS = [{"key": "a", "label": "A"}, {"key": "b", "label": "B"}]
CASCADE = {
    "levels": [{"key": "province", "label": "P"}, {"key": "city", "label": "C"}],
    "options": [{"key": "zj", "label": "浙江"}, {"key": "hz", "label": "杭州", "parent": "zj"}],
}
EVERY = {
    "key": "every",
    "label": "Every field",
    "title_field": "text",
    "fields": [
        {"key": "text", "type": "text"},
        {"key": "textarea", "type": "textarea"},
        {"key": "rich", "type": "rich_text"},
        {"key": "number", "type": "number", "decimals": 2},
        {"key": "money", "type": "money"},
        {"key": "percent", "type": "percent"},
        {"key": "date", "type": "date"},
        {"key": "datetime", "type": "datetime"},
        {"key": "time", "type": "time"},
        {"key": "span", "type": "date_range"},
        {"key": "select", "type": "select", "options": OPTIONS},
        {"key": "multi", "type": "multiselect", "options": OPTIONS},
        {"key": "cascade", "type": "cascade", **CASCADE},
        {"key": "flag", "type": "boolean"},
        {"key": "rating", "type": "rating"},
        {"key": "email", "type": "email"},
        {"key": "phone", "type": "phone"},
        {"key": "url", "type": "url"},
        {"key": "address", "type": "address"},
        {"key": "location", "type": "location"},
        {"key": "photos", "type": "image", "multiple": True},
        {"key": "file", "type": "attachment"},
        {"key": "signature", "type": "signature"},
        {"key": "user", "type": "user"},
        {"key": "departments", "type": "department", "multiple": True},
        {"key": "customer", "type": "relation", "form": "customer"},
        {"key": "tags", "type": "relation", "form": "tag", "multiple": True},
        {"key": "customer_name", "type": "lookup", "relation": "customer", "field": "name"},
        {"key": "number_x2", "type": "formula", "result_type": "number", "expr": "number * 2"},
        {"key": "serial", "type": "autonumber", "pattern": "E-{####}"},
        {
            "key": "lines",
            "type": "subform",
            "fields": [{"key": "sku", "type": "text"}, {"key": "qty", "type": "number"}],
        },
        {
            "key": "line_qty",
            "type": "rollup",
            "relation": "lines",
            "aggregate": "sum",
            "field": "qty",
        },
    ],
}
CUSTOMER = {
    "key": "customer",
    "label": "Customer",
    "title_field": "name",
    "fields": [
        {"key": "name", "type": "text"},
        {
            "key": "items",
            "type": "relation",
            "form": "every",
            "multiple": True,
            "inverse": "customer",
        },
        {"key": "item_count", "type": "rollup", "relation": "items", "aggregate": "count"},
    ],
}
TAG = {"key": "tag", "label": "Tag", "fields": [{"key": "label", "type": "text"}]}
BASE = "/api/v1/apps/shape/forms"


@pytest.fixture
def shape_app(migrated_engine: sa.Engine, tmp_path: Path) -> str:
    folder = tmp_path / "shape_bundle"
    (folder / "forms").mkdir(parents=True)
    (folder / "bundle.yaml").write_text(
        'key: shape\nname: Shapes\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n'
    )
    for form in (EVERY, CUSTOMER, TAG):
        text = json.dumps(form, ensure_ascii=False)
        (folder / "forms" / f"{form['key']}.yaml").write_text(text, encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    return "shape"


def _create(client: TestClient, form: str, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{BASE}/{form}/records", json=data)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _upload(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post("/api/v1/files", files={"file": (name, b"bytes of " + name.encode())})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_list_and_kanban_items_equal_get(
    client: TestClient, shape_app: str, make_user: Callable[..., Any]
) -> None:
    user = make_user("shape-user")
    customer = _create(client, "customer", {"name": "Acme"})
    tags = [_create(client, "tag", {"label": label})["id"] for label in ("x", "y")]
    data = {
        "text": "every field",
        "textarea": "two\nlines",
        "rich": "<p>rich</p>",
        "number": 2.5,
        "money": "12.30",
        "percent": 12.5,
        "date": "2026-01-02",
        "datetime": "2026-01-02T03:04:05+08:00",
        "time": "09:30",
        "span": {"start": "2026-01-01", "end": "2026-01-31"},
        "select": "a",
        "multi": ["b", "a"],
        "cascade": "hz",
        "flag": True,
        "rating": 4,
        "email": "ann@example.com",
        "phone": "+86 138-0013-8000",
        "url": "https://example.com/a",
        "address": {"province": "浙江省", "city": "杭州市", "detail": "1 号"},
        "location": {"lng": 120.1, "lat": 30.2, "accuracy": 5},
        "photos": [_upload(client, "a.png"), _upload(client, "b.png")],
        "file": _upload(client, "报告.pdf"),
        "signature": _upload(client, "sig.png"),
        "user": user.id,
        "departments": [],
        "customer": customer["id"],
        "tags": tags,
        "lines": [{"sku": "S1", "qty": 2}, {"sku": "S2", "qty": 3}],
    }
    created = _create(client, "every", data)
    one = client.get(f"{BASE}/every/records/{created['id']}").json()
    assert one == created
    assert one["customer_name"] == "Acme" and one["line_qty"] == 5 and one["number_x2"] == 5
    assert one["tags"] == tags and len(one["photos"]) == 2 and one["serial"] == "E-0001"
    assert one["created_at"].endswith("Z") and "owner_id" in one and "owner" not in one

    [item] = client.get(f"{BASE}/every/records").json()["items"]
    assert item == one
    columns = client.get(f"{BASE}/every/records/kanban", params={"field": "select"}).json()
    [kanban_item] = [i for column in columns["columns"] for i in column["items"]]
    assert kanban_item == one

    # A rollup over the other side, and a deleted record in the trash list, read the same way.
    again = client.get(f"{BASE}/customer/records/{customer['id']}").json()
    assert again["item_count"] == 1
    assert client.get(f"{BASE}/customer/records").json()["items"] == [again]
    spare = _create(client, "tag", {"label": "spare"})["id"]
    deleted = client.delete(f"{BASE}/tag/records/{spare}").json()
    tag_items = client.get(f"{BASE}/tag/records", params={"trash": "true"}).json()["items"]
    assert tag_items == [deleted] and deleted["deleted_at"].endswith("Z")
