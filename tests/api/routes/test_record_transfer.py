"""Import and export over HTTP: upload, poll, error report, streamed export (both backends)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

FORM = "/api/v1/apps/xfer/forms/item"
ITEM_FORM = {
    "schema_version": 1,
    "key": "item",
    "label": {"en": "Item", "zh": "物品"},
    "title_field": "name",
    "fields": [
        {
            "type": "text",
            "key": "name",
            "label": {"en": "Name", "zh": "名称"},
            "required": True,
            "unique": True,
        },
        {"type": "number", "key": "qty", "label": {"en": "Quantity", "zh": "数量"}, "min": 0},
        {
            "type": "select",
            "key": "size",
            "label": {"en": "Size", "zh": "尺寸"},
            "options": [
                {"key": "s", "label": {"en": "Small", "zh": "小"}},
                {"key": "l", "label": {"en": "Large", "zh": "大"}},
            ],
        },
    ],
}


@pytest.fixture
def app_client(client: TestClient) -> TestClient:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "bundle.yaml", 'key: xfer\nname: Transfer\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n'
        )
        archive.writestr("forms/item.yaml", json.dumps(ITEM_FORM))
    response = client.post(
        "/api/v1/bundles/import",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/zip"},
    )
    assert response.status_code == 200, response.text
    return client


def _upload(client: TestClient, data: bytes, name: str = "items.csv", **form: str) -> dict:  # type: ignore[type-arg]
    response = client.post(FORM + "/imports", files={"file": (name, data)}, data=form)
    assert response.status_code == 202, response.text
    job = client.get(FORM + f"/imports/{response.json()['id']}").json()
    return job  # type: ignore[no-any-return]


def test_import_poll_and_error_report(app_client: TestClient) -> None:
    data = "名称,数量,尺寸\n螺丝,3,小\n螺母,-1,大\n垫圈,2,L\n".encode()
    job = _upload(app_client, data, mode="valid_rows", lang="zh")
    assert (job["status"], job["rows_written"], job["rows_failed"]) == ("done", 2, 1)
    report = app_client.get(job["links"]["errors"])
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    lines = report.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "名称,数量,尺寸,#row,#error_codes,#errors"
    assert lines[1].startswith("螺母,'-1,大,3,submission.")
    xlsx = app_client.get(job["links"]["errors"], params={"format": "xlsx"})
    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert rows[1][:4] == ("螺母", "-1", "大", 3)


def test_semicolon_delimiter_and_mapping(app_client: TestClient) -> None:
    data = b"Item;How many\nA;1\n"
    mapping = json.dumps({"Item": "name", "How many": "qty"})
    job = _upload(app_client, data, delimiter=";", mapping=mapping)
    assert (job["status"], job["rows_written"]) == ("done", 1)


def test_all_or_nothing_over_http(app_client: TestClient) -> None:
    job = _upload(app_client, b"Name,Quantity\nA,1\nB,x\n")
    assert (job["status"], job["rows_written"], job["rows_failed"]) == ("failed", 0, 1)
    listed = app_client.get(FORM + "/records/export").content.decode("utf-8-sig")
    assert listed.strip() == "Name,Quantity,Size"


def test_file_problems_are_reported_on_the_job(app_client: TestClient) -> None:
    job = _upload(app_client, b"not a workbook", name="items.xlsx")
    assert job["status"] == "failed"
    assert job["problems"][0]["code"] == "transfer.not-a-spreadsheet"
    job = _upload(app_client, "Name\n名称\n".encode("gb18030"))
    assert job["problems"][0]["code"] == "transfer.bad-encoding"
    job = _upload(app_client, "Name\n名称\n".encode("gb18030"), encoding="gb18030")
    assert job["status"] == "done"


def test_bad_options_and_unknown_things(app_client: TestClient) -> None:
    response = app_client.post(
        FORM + "/imports", files={"file": ("a.csv", b"Name\nA\n")}, data={"mode": "some"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "transfer.bad-option"
    assert app_client.get(FORM + "/imports/999999").status_code == 404
    missing = app_client.post(
        "/api/v1/apps/xfer/forms/nope/imports", files={"file": ("a.csv", b"Name\n")}
    )
    assert missing.status_code == 404
    assert app_client.get("/api/v1/apps/xfer/forms/nope/records/export").status_code == 404


def test_upload_limit(app_client: TestClient) -> None:
    response = app_client.post(
        FORM + "/imports", files={"file": ("a.csv", b"Name\n" + b"x" * 2_100_000)}
    )
    assert response.status_code == 413


def test_export_round_trip(app_client: TestClient) -> None:
    _upload(app_client, b"Name,Quantity,Size\nA,1,Small\n=B,2,Large\n")
    for fmt in ("csv", "xlsx"):
        response = app_client.get(
            FORM + "/records/export", params={"format": fmt, "lang": "zh", "keys": "true"}
        )
        assert response.status_code == 200
        assert "attachment" in response.headers["content-disposition"]
    csv_text = app_client.get(FORM + "/records/export").content.decode("utf-8-sig")
    assert csv_text.splitlines() == ["Name,Quantity,Size", "A,1,Small", "'=B,2,Large"]
    audit = app_client.get("/api/v1/audit", params={"action": "record.export"}).json()
    assert len([e for e in audit["items"] if e["action"] == "record.export"]) == 3
