"""The after-sales ticket form's QR repair link (AFTERSALES §3.1), declared in ticket.yaml and
published by the bundle import: device, model, customer and site come read-only from the
device's qr_token, the customer types the problem and attaches photos."""

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
NO_AUTH = {"Authorization": ""}
SH = {"province": "上海市", "city": "上海市", "district": "浦东新区", "detail": "1 Road"}
QR = "Qr2406B00123abcd"  # exactly 16 characters, as device.qr_token wants
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def shop(client: TestClient, migrated_engine: sa.Engine) -> Iterator[dict[str, Any]]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    import_bundle(db=migrated_engine, bundle=load_bundle(ROOT / "templates" / "aftersales"))
    me = client.get(f"{API}/auth/me").json()
    me_id = me["user"]["id"] if "user" in me else me["id"]

    def post(form: str, body: dict[str, Any]) -> int:
        made = client.post(f"{FORMS}/{form}/records", json=body)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    customer = post("customer", {"name": "华东精工", "code": "C-1", "customer_type": "company",
                                 "tier": "vip", "address": SH})  # fmt: skip
    ac300 = {"code": "AC-300", "name": "AC-300", "product_line": "compressor",
             "required_skill": "compressor", "product_manager": me_id}  # fmt: skip
    model = post("product_model", ac300)
    device = post("device", {"code": "D-1", "name": "AC-300 #1", "serial_no": "AC3-2406B-00123",
                             "qr_token": QR, "product_model": model, "batch_no": "2406B",
                             "customer": customer, "site_address": SH,
                             "delivery_date": "2025-01-01"})  # fmt: skip
    yield {"customer": customer, "model": model, "device": device}
    use_environment(None)


def test_the_qr_link_prefills_the_device_and_takes_photos(
    client: TestClient, shop: dict[str, Any]
) -> None:
    [link] = client.get(f"{FORMS}/ticket/public-links").json()
    assert (link["enabled"], link["options"]["bundle_key"]) == (True, "qr_repair")
    form = client.get(f"{API}/public/{link['token']}", params={"qr": QR}, headers=NO_AUTH)
    assert form.status_code == 200, form.text
    body = form.json()
    assert [f["key"] for f in body["fields"]] == ["subject", "description", "attachments"]
    prefilled = {p["key"]: p["value"] for p in body["prefilled"]}
    assert prefilled["device"] == shop["device"] and prefilled["customer"] == shop["customer"]
    assert prefilled["product_model"] == shop["model"] and prefilled["channel"] == "qr"
    assert prefilled["site_address"]["province"] == "上海市"
    photo = client.post(f"{API}/public/{link['token']}/files", headers=NO_AUTH,
                        files={"file": ("异响.png", PNG, "image/png")})  # fmt: skip
    assert photo.status_code == 201, photo.text
    unknown = client.get(f"{API}/public/{link['token']}", params={"qr": "nope"}, headers=NO_AUTH)
    assert unknown.status_code == 404
    sent = client.post(f"{API}/public/{link['token']}", params={"qr": QR}, headers=NO_AUTH, json={
        "subject": "压缩机异响", "description": "压力上不去", "attachments": [photo.json()["id"]],
        "customer": 999})  # fmt: skip
    assert sent.status_code == 422
    assert [e["path"] for e in sent.json()["errors"]] == ["customer"]  # not the submitter's to set

    good = client.post(f"{API}/public/{link['token']}", params={"qr": QR}, headers=NO_AUTH, json={
        "subject": "压缩机异响", "description": "压力上不去",
        "attachments": [photo.json()["id"]]})  # fmt: skip
    assert good.status_code in (200, 201), good.text
    [ticket] = client.get(f"{FORMS}/ticket/records").json()["items"]
    assert (ticket["channel"], ticket["device"], ticket["customer"]) == (
        "qr",
        shop["device"],
        shop["customer"],
    )
    assert ticket["contact"] is None and ticket["number"].startswith("WO-")
