"""Load → dump → load is lossless, and dumping is canonical (byte-identical when repeated).

Runs on every bundle folder under templates/ and tests/fixtures/bundles/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bundles import (
    Bundle,
    canonical_definition,
    definition_digest,
    dump_bundle,
    is_bundle_folder,
    load_bundle,
    render_bundle,
    zip_bundle,
)

ROOT = Path(__file__).resolve().parents[3]
BUNDLE_FOLDERS = sorted(
    path
    for base in (ROOT / "templates", ROOT / "tests" / "fixtures" / "bundles")
    for path in base.iterdir()
    if path.is_dir() and is_bundle_folder(path)
)


def assert_same(a: Bundle, b: Bundle) -> None:
    assert a.manifest == b.manifest
    assert a.files == b.files
    assert a.definitions == b.definitions
    for kind, key, spec in a.iter_definitions():
        assert definition_digest(spec) == definition_digest(b.definition(kind, key))


def test_bundles_are_found() -> None:
    names = {path.name for path in BUNDLE_FOLDERS}
    assert {"aftersales", "service_desk"} <= names


@pytest.mark.parametrize("folder", BUNDLE_FOLDERS, ids=lambda p: p.name)
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_folder_round_trip_is_lossless_and_stable(folder: Path, fmt: str, tmp_path: Path) -> None:
    original = load_bundle(folder)
    dump_bundle(original, tmp_path / "first", fmt=fmt)  # type: ignore[arg-type]
    reloaded = load_bundle(tmp_path / "first")
    assert_same(original, reloaded)
    dump_bundle(reloaded, tmp_path / "second", fmt=fmt)  # type: ignore[arg-type]
    first = {
        p.relative_to(tmp_path / "first"): p.read_bytes()
        for p in (tmp_path / "first").rglob("*")
        if p.is_file()
    }
    second = {
        p.relative_to(tmp_path / "second"): p.read_bytes()
        for p in (tmp_path / "second").rglob("*")
        if p.is_file()
    }
    assert first == second


@pytest.mark.parametrize("folder", BUNDLE_FOLDERS, ids=lambda p: p.name)
def test_zip_round_trip_is_deterministic(folder: Path, tmp_path: Path) -> None:
    original = load_bundle(folder)
    data = zip_bundle(original)
    assert zip_bundle(load_bundle(data)) == data
    dump_bundle(original, tmp_path / "pack.zip")
    assert (tmp_path / "pack.zip").read_bytes() == data
    assert_same(original, load_bundle(tmp_path / "pack.zip"))


def test_canonical_dump_keeps_tags_and_schema_version_and_drops_defaults() -> None:
    bundle = load_bundle(ROOT / "tests" / "fixtures" / "bundles" / "service_desk")
    ticket = canonical_definition(bundle.definition("forms", "ticket"))
    assert list(ticket)[:3] == ["schema_version", "key", "label"]
    subject = next(f for f in ticket["fields"] if f["key"] == "subject")
    assert subject == {"key": "subject", "type": "text", "required": True}
    flow = canonical_definition(bundle.definition("flows", "ticket_intake"))
    assert flow["edges"][0] == {"from": "start", "to": "triage"}
    assert flow["nodes"][1] == {
        "key": "triage",
        "type": "user_task",
        "assignees": [{"type": "role", "value": "agent"}],
    }


def test_yaml_output_is_readable() -> None:
    bundle = load_bundle(ROOT / "tests" / "fixtures" / "bundles" / "service_desk")
    text = render_bundle(bundle)["forms/ticket.yaml"].decode()
    assert "工单" in text  # unicode kept, not escaped
    assert "description: |\n  One request from a customer.\n" in text
    assert "  - key: subject\n    type: text\n" in text  # block style, indented sequences
    assert "&" not in text and "*" not in text.replace("hours * 100", "")


def test_digest_tracks_content_not_key_order() -> None:
    bundle = load_bundle(ROOT / "tests" / "fixtures" / "bundles" / "service_desk")
    ticket = bundle.definition("forms", "ticket")
    model = type(ticket)
    data = canonical_definition(ticket)
    shuffled = model.model_validate(dict(reversed(list(data.items()))))
    assert definition_digest(shuffled) == definition_digest(ticket)
    relabelled = model.model_validate({**data, "label": "Case"})
    assert definition_digest(relabelled) != definition_digest(ticket)


def test_opaque_files_round_trip_byte_for_byte(tmp_path: Path) -> None:
    bundle = load_bundle(ROOT / "tests" / "fixtures" / "bundles" / "service_desk")
    dump_bundle(bundle, tmp_path / "out")
    source = ROOT / "tests" / "fixtures" / "bundles" / "service_desk" / "pages" / "home.yaml"
    assert (tmp_path / "out" / "pages" / "home.yaml").read_bytes() == source.read_bytes()
