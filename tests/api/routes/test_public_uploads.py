"""Photos and files on public links: accepted types by content, size, count and rate limits,
path-laden names, and uploads that only their own link's submission can use, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.bundles import load_bundle
from engine.installer import import_bundle
from tests.engine.public.support import BUNDLE, LINK

LINKS = "/api/v1/apps/shots/forms/request/public-links"
REQUESTS = "/api/v1/apps/shots/forms/request/records"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PHOTOS = "  - {key: photos, type: image, label: Photos, multiple: true, max_files: 10}\n"
UPLOADS = {"fields": ["photos"], "max_files": 2, "max_bytes": 2048, "per_client": 6}
NO_AUTH = {"Authorization": ""}


@pytest.fixture
def shots(client: TestClient, migrated_engine: sa.Engine, tmp_path: Path) -> TestClient:
    folder = tmp_path / "shots"
    for name, text in BUNDLE.items():
        text = text.replace("key: desk", "key: shots")
        if name == "forms/request.yaml":
            text = text.rstrip("\n") + "\n" + PHOTOS
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    made = client.post(
        "/api/v1/apps/shots/forms/device/records", json={"serial": "SN-1", "qr_token": "qr-one"}
    )
    assert made.status_code == 201, made.text
    return client


def publish(api: TestClient, **changes: Any) -> str:
    body = {**LINK, "fields": [*LINK["fields"], "photos"], "uploads": UPLOADS, **changes}
    made = api.post(LINKS, json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def upload(
    api: TestClient, token: str, content: bytes, name: str = "a.png", kind: str = "image/png"
) -> Any:
    files = {"file": (name, content, kind)}
    return api.post(f"/api/v1/public/{token}/files", files=files, headers=NO_AUTH)


def submit(api: TestClient, token: str, data: Any) -> Any:
    return api.post(f"/api/v1/public/{token}", params={"qr": "qr-one"}, json=data, headers=NO_AUTH)


def code_of(response: Any) -> str:
    body = response.json()
    return str(body.get("code")) + "".join(
        f" {e['path']}:{e['code']}" for e in body.get("errors", [])
    )


def test_a_submitter_attaches_photos_it_uploaded(shots: TestClient) -> None:
    token = publish(shots)
    first = upload(shots, token, PNG, name="../../etc/passwd")
    second = upload(shots, token, JPEG, name="C:\\Users\\me\\photo.jpeg", kind="text/html")
    assert first.status_code == 201 and second.status_code == 201, first.text + second.text
    assert first.json()["name"] == "passwd.png" and first.json()["content_type"] == "image/png"
    assert second.json()["name"] == "photo.jpeg" and second.json()["content_type"] == "image/jpeg"
    ids = [first.json()["id"], second.json()["id"]]
    sent = submit(shots, token, {"subject": "leak", "photos": ids})
    assert sent.status_code == 201, sent.text
    [record] = shots.get(REQUESTS).json()["items"]
    assert [p["id"] for p in record["photos"]] == ids
    assert [p["content_type"] for p in record["photos"]] == ["image/png", "image/jpeg"]
    # Each upload is used once: a second submission cannot take the same files.
    again = submit(shots, token, {"subject": "again", "photos": ids[:1]})
    assert again.status_code == 422 and code_of(again).endswith("photos/0:public.upload-unknown")
    # Anonymous callers cannot download stored files.
    assert shots.get(f"/api/v1/files/{ids[0]}", headers=NO_AUTH).status_code == 401


def test_attack_files_are_refused(shots: TestClient) -> None:
    token = publish(shots, uploads={**UPLOADS, "per_client": 20})
    html = upload(shots, token, b"<html><script>alert(1)</script></html>", name="x.png")
    assert html.status_code == 422 and "file:public.file-type" in code_of(html)
    svg = upload(shots, token, b"<svg onload=alert(1)>", name="x.svg", kind="image/svg+xml")
    assert svg.status_code == 422 and "public.file-type" in code_of(svg)
    pdf = upload(shots, token, b"%PDF-1.7 ...", name="doc.pdf", kind="application/pdf")
    assert pdf.status_code == 422  # not among this link's (default image) types
    big = upload(shots, token, PNG + b"\x00" * 4096)
    assert big.status_code == 413 and code_of(big) == "file.too-large"
    # Files uploaded elsewhere (another link, or internal uploads) cannot be attached.
    other = publish(shots)
    foreign = upload(shots, other, PNG).json()["id"]
    internal = shots.post("/api/v1/files", files={"file": ("i.png", PNG, "image/png")}).json()["id"]
    for file_id in (foreign, internal, "x" * 22, 7):
        refused = submit(shots, token, {"subject": "s", "photos": [file_id]})
        assert refused.status_code == 422 and "public.upload-unknown" in code_of(refused)
    mine = [upload(shots, token, PNG).json()["id"] for _ in range(3)]
    over = submit(shots, token, {"subject": "s", "photos": mine})
    assert over.status_code == 422 and "photos:public.too-many-files" in code_of(over)
    assert shots.get(REQUESTS).json()["items"] == []


def test_uploads_are_rate_limited_and_need_an_upload_field(shots: TestClient) -> None:
    token = publish(shots, uploads={**UPLOADS, "per_client": 2})
    assert [upload(shots, token, PNG).status_code for _ in range(3)] == [201, 201, 429]
    plain = shots.post(LINKS, json=LINK).json()["token"]
    refused = upload(shots, plain, PNG)
    assert refused.status_code == 404 and code_of(refused) == "public.no-uploads"
    bad = shots.post(LINKS, json={**LINK, "uploads": {"fields": ["photos"]}})
    assert bad.status_code == 422 and "uploads/fields/0:public.field-not-fillable" in code_of(bad)
