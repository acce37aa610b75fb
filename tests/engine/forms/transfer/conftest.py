"""Transfer fixtures: the `xfer` app (order, order_copy, customer) installed in the test DB."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from transfer_forms import ORDER_FORM

from engine.registry import DefinitionRegistry
from engine.storage.uow import UnitOfWork

CUSTOMER_FORM = {
    "schema_version": 1,
    "key": "customer",
    "label": "Customer",
    "title_field": "name",
    "fields": [{"type": "text", "key": "name", "label": "Name", "required": True}],
}
CUSTOMER_FIELD = {
    "type": "relation",
    "key": "customer",
    "label": {"en": "Customer", "zh": "客户"},
    "form": "customer",
}


def _forms() -> dict[str, dict[str, object]]:
    fields = [*ORDER_FORM["fields"], CUSTOMER_FIELD]
    order = {**ORDER_FORM, "fields": fields}
    copy = {**order, "key": "order_copy"}
    return {"order": order, "order_copy": copy, "customer": CUSTOMER_FORM}


@pytest.fixture
def transfer_app(
    migrated_engine: sa.Engine, uow_factory: Callable[[], UnitOfWork], tmp_path: Path
) -> str:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    folder = tmp_path / "xfer_bundle"
    (folder / "forms").mkdir(parents=True)
    (folder / "bundle.yaml").write_text(
        'key: xfer\nname: Transfer test\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n'
    )
    for key, form in _forms().items():
        (folder / "forms" / f"{key}.yaml").write_text(json.dumps(form, ensure_ascii=False))
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    return "xfer"


@pytest.fixture
def transfer_service(migrated_engine: sa.Engine, transfer_app: str, tmp_path: Path) -> object:
    from engine.forms.transfer_service import TransferService

    return TransferService(
        db=migrated_engine, registry=DefinitionRegistry(), data_dir=tmp_path / "data", batch_size=3
    )
