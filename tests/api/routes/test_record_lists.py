"""GET …/records, …/records/count and …/records/kanban on both backends."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.bundles import load_bundle
from engine.forms.compiler import compile_form
from engine.installer import import_bundle
from engine.storage._fts import ensure_search_index
from engine.storage.form_queries import query_target

BUNDLE = Path(__file__).resolve().parents[2] / "fixtures" / "lists_bundle"
URL = "/api/v1/apps/lists/forms/item/records"
NOW = dt.datetime(2026, 11, 18, 9, 30, tzinfo=dt.UTC)
HOSTILE = "<script>alert(1)</script>' OR 1=1; --"


@pytest.fixture
def api(client: TestClient, migrated_engine: sa.Engine) -> Iterator[TestClient]:
    bundle = load_bundle(BUNDLE)
    import_bundle(db=migrated_engine, bundle=bundle)
    forms = bundle.definitions["forms"]
    target = query_target(app="lists", form=compile_form(forms["item"], forms=forms), forms=forms)
    rows = [
        {
            "number": f"IT-{i:03d}",
            "title": HOSTILE if i == 7 else f"item {i}",
            "status": ["new", "open", "done"][i % 3],
            "qty": i,
            "place__province": "北京市",
            "place__city": "海淀区",
            "due": dt.date(2026, 11, 1) + dt.timedelta(days=i),
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i in range(12)
    ]
    with migrated_engine.begin() as conn:
        ensure_search_index(conn, form=target.form.spec, tables=target.tables)
        conn.execute(target.main.insert(), rows)
    yield client


def _get(api: TestClient, path: str = "", **params: Any) -> Any:
    if isinstance(params.get("filter"), dict | list):
        params["filter"] = json.dumps(params["filter"])
    return api.get(URL + path, params=params)


def test_page_with_filter_sort_and_count(api: TestClient) -> None:
    response = _get(
        api, filter={"field": "status", "op": "in", "value": ["new", "open"]}, sort="-qty", limit=3
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["qty"] for item in body["items"]] == [10, 9, 7]
    assert body["count"] == {"value": 8, "exact": True}
    first = body["items"][0]
    assert first["place"] == {
        "province": "北京市",
        "city": "海淀区",
        "district": None,
        "detail": None,
    }
    assert first["created_at"] == "2026-11-18T09:30:00Z" and first["due"] == "2026-11-11"
    following = _get(
        api,
        filter={"field": "status", "op": "in", "value": ["new", "open"]},
        sort="-qty",
        limit=3,
        cursor=body["next_cursor"],
    ).json()
    assert [item["qty"] for item in following["items"]] == [6, 4, 3]


def test_every_page_once(api: TestClient) -> None:
    seen, cursor = [], None
    while True:
        body = _get(
            api, sort="title", limit=5, count="false", **({"cursor": cursor} if cursor else {})
        ).json()
        assert body["count"] is None
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == list(range(1, 13)) and len(seen) == 12


def test_hostile_text_comes_back_verbatim(api: TestClient) -> None:
    by_filter = _get(api, filter={"field": "title", "op": "eq", "value": HOSTILE}).json()
    assert [item["title"] for item in by_filter["items"]] == [HOSTILE]
    by_search = _get(api, q="' OR 1=1").json()
    assert [item["title"] for item in by_search["items"]] == [HOSTILE]
    assert _get(api, q="'; DROP TABLE lists__item; --").json()["items"] == []
    assert _get(api).json()["count"]["value"] == 12


def test_expression_filter_and_search(api: TestClient) -> None:
    body = _get(api, filter_expr='qty >= 9 AND status <> "done"').json()
    assert sorted(item["qty"] for item in body["items"]) == [9, 10]
    assert _get(api, q="海淀").json()["items"] == []  # address parts are not searched
    assert len(_get(api, q="item 1").json()["items"]) == 3  # 1, 10, 11


def test_count_and_kanban(api: TestClient) -> None:
    count = _get(api, "/count", filter={"field": "qty", "op": "ge", "value": 6})
    assert count.status_code == 200 and count.json() == {"value": 6, "exact": True}
    kanban = _get(api, "/kanban", field="status", sort="-qty", per_column=2)
    assert kanban.status_code == 200, kanban.text
    columns = kanban.json()["columns"]
    assert [(c["value"], c["count"]) for c in columns] == [("new", 4), ("open", 4), ("done", 4)]
    assert [item["qty"] for item in columns[0]["items"]] == [9, 6]


def test_view(api: TestClient) -> None:
    body = _get(api, view="open_items").json()
    assert {item["status"] for item in body["items"]} == {"new", "open"}
    dues = [item["due"] for item in body["items"]]
    assert dues == sorted(dues, reverse=True)
    assert (
        set(body["items"][0]) >= {"id", "title", "qty", "due"} and "place" not in body["items"][0]
    )
    board = _get(api, "/kanban", view="board").json()
    assert board["field"] == "status"
    narrowed = _get(api, view="open_items", filter={"field": "qty", "op": "lt", "value": 3})
    assert sorted(item["qty"] for item in narrowed.json()["items"]) == [0, 1]


@pytest.mark.parametrize(
    ("params", "status", "code", "path"),
    [
        ({"filter": "{not json"}, 422, "list.bad-filter", "/filter"),
        ({"filter": {"field": "ghost", "op": "eq", "value": 1}}, 422,
         "list.unknown-field", "/filter/field"),
        ({"filter": {"and": [{"field": "qty", "op": "eq", "value": "1; DROP"}]}}, 422,
         "list.bad-value", "/filter/and/0/value"),
        ({"sort": "-ghost"}, 422, "list.unknown-field", "/sort/0"),
        ({"limit": 500}, 422, "list.bad-limit", "/limit"),
        ({"cursor": "garbage!!"}, 422, "list.bad-cursor", "/cursor"),
        ({"filter_expr": "DROP TABLE x"}, 422, "list.bad-filter-expr", "/filter_expr"),
        ({"tz": "Mars/Olympus"}, 422, "list.bad-timezone", "/tz"),
    ],
)  # fmt: skip
def test_bad_requests(api: TestClient, params: Any, status: int, code: str, path: str) -> None:
    response = _get(api, **params)
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert (errors[0]["code"], errors[0]["path"]) == (code, path)


def test_unknown_form_view_and_group(api: TestClient) -> None:
    assert api.get("/api/v1/apps/lists/forms/ghost/records").status_code == 404
    missing_view = _get(api, view="ghost")
    assert missing_view.status_code == 404 and missing_view.json()["code"] == "list.unknown-view"
    bad_group = _get(api, "/kanban", field="qty")
    assert (
        bad_group.status_code == 422
        and bad_group.json()["errors"][0]["code"] == "list.bad-group-by"
    )
