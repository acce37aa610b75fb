"""Public links declared in form definitions: published on import, stable across re-imports,
updated in place, disabled when removed, refused with paths when they do not fit the form."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.errors import DefinitionError
from engine.installer import import_bundle
from engine.public._store import LinkStore
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork
from tests.engine.public.support import BUNDLE

PUBLIC = """
public:
  links:
  - key: qr
    label: Report a fault
    fields: [subject, description]
    prefill: {channel: {value: qr}}
    lookup: {relation: device, by: qr_token, param: qr, copy: {model: model}}
    trackable: [subject, status]
"""


def _write(folder: Path, *, public: str, version: str, app: str = "desk") -> Path:
    for name, text in BUNDLE.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "bundle.yaml":
            text = text.replace("1.0.0", version).replace("key: desk", f"key: {app}")
        if name == "forms/request.yaml":
            text = text + public
        path.write_text(text.lstrip(), encoding="utf-8")
    return folder


def _links(engine: sa.Engine) -> list[dict[str, object]]:
    with UnitOfWork(engine) as uow:
        links = LinkStore(uow.conn, now=utc_now()).list_app(app="desk")
    return [
        {"token": x.token, "enabled": x.enabled, "label": x.label, "options": x.options}
        for x in links
    ]


def test_import_publishes_updates_and_disables_declared_links(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "desk"
    import_bundle(
        db=migrated_engine, bundle=load_bundle(_write(folder, public=PUBLIC, version="1.0.0"))
    )
    [first] = _links(migrated_engine)
    assert first["enabled"] is True and first["label"] == "Report a fault"
    assert first["options"]["bundle_key"] == "qr"  # type: ignore[index]
    assert first["options"]["fields"] == ["subject", "description"]  # type: ignore[index]

    changed = PUBLIC.replace("Report a fault", "Scan and report").replace(
        "[subject, description]", "[subject]"
    )
    import_bundle(
        db=migrated_engine, bundle=load_bundle(_write(folder, public=changed, version="1.0.1"))
    )
    [second] = _links(migrated_engine)
    assert second["token"] == first["token"]  # the printed QR address keeps working
    assert second["label"] == "Scan and report"
    assert second["options"]["fields"] == ["subject"]  # type: ignore[index]

    import_bundle(
        db=migrated_engine, bundle=load_bundle(_write(folder, public="", version="1.0.2"))
    )
    [third] = _links(migrated_engine)
    assert third["token"] == first["token"] and third["enabled"] is False


def test_a_link_that_does_not_fit_its_form_fails_the_import_with_paths(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    bad = PUBLIC.replace("[subject, description]", "[subject, device]").replace(
        "by: qr_token", "by: model_x"
    )
    bundle = load_bundle(_write(tmp_path / "desk", public=bad, version="1.0.0", app="desk_bad"))
    with pytest.raises(DefinitionError) as caught:
        import_bundle(db=migrated_engine, bundle=bundle)
    found = {(p.code, p.path) for p in caught.value.problems}
    assert ("public.field-not-fillable", "/public/links/0/fields/1") in found
    assert ("public.bad-lookup", "/public/links/0/lookup/by") in found
    assert all(p.source == "forms/request.yaml" for p in caught.value.problems)
    with UnitOfWork(migrated_engine) as uow:  # nothing of the import was kept
        assert "desk_bad" not in {a.key for a in uow.definitions.list_apps()}
