"""`tangram files gc`: stored files no record refers to are deleted, with their blobs."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import cli
from engine.bundles import load_bundle
from engine.forms.file_gc import collect_garbage
from engine.installer import import_bundle
from engine.storage.files import blob_path
from engine.storage.tables import stored_files

DOC = {
    "key": "doc",
    "label": "Document",
    "fields": [
        {"key": "name", "type": "text"},
        {"key": "file", "type": "attachment"},
        {"key": "pages", "type": "subform", "fields": [{"key": "scan", "type": "image"}]},
    ],
}
URL = "/api/v1/apps/gc/forms/doc/records"
DAY = dt.timedelta(days=1)


@pytest.fixture
def gc_app(migrated_engine: sa.Engine, tmp_path: Path) -> str:
    folder = tmp_path / "gc_bundle"
    (folder / "forms").mkdir(parents=True)
    (folder / "bundle.yaml").write_text('key: gc\nname: GC\nversion: 1.0.0\nengine: ">=0.1"\n')
    (folder / "forms" / "doc.yaml").write_text(json.dumps(DOC))
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    return "gc"


def _upload(client: TestClient, data: bytes) -> dict[str, Any]:
    response = client.post("/api/v1/files", files={"file": ("f.bin", data)})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _age(engine: sa.Engine, days: float) -> None:
    with engine.begin() as conn:
        old = dt.datetime.now(dt.UTC) - days * DAY
        conn.execute(sa.update(stored_files).values(created_at=old))


def _ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(stored_files.c.id)).scalars())


def test_gc_keeps_referenced_and_recent_files_and_deletes_the_rest(
    client: TestClient, gc_app: str, migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    in_field, in_row, loose = _upload(client, b"A"), _upload(client, b"B"), _upload(client, b"C")
    same_bytes = _upload(client, b"A")  # unattached, but its blob is in_field's too
    in_deleted = _upload(client, b"E")
    data = {"name": "x", "file": in_field, "pages": [{"scan": [in_row]}]}
    assert client.post(URL, json=data).status_code == 201
    gone = client.post(URL, json={"name": "y", "file": in_deleted}).json()
    assert client.delete(f"{URL}/{gone['id']}").status_code == 200
    _age(migrated_engine, 2)
    fresh = _upload(client, b"F")  # young: may be attached soon
    stray = blob_path(root, "f" * 64)  # bytes no row names (a rolled-back upload)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"stray")
    leftover = root / "tmpabc123"  # an interrupted upload's temporary file
    leftover.write_bytes(b"partial")
    long_ago = (dt.datetime.now(dt.UTC) - 2 * DAY).timestamp()
    for path in (stray, leftover):
        os.utime(path, (long_ago, long_ago))

    now = dt.datetime.now(dt.UTC)
    preview = collect_garbage(migrated_engine, root=root, now=now, dry_run=True)
    assert (preview.files, preview.blobs, preview.dry_run) == (2, 3, True)
    assert len(_ids(migrated_engine)) == 6 and stray.exists()

    report = collect_garbage(migrated_engine, root=root, now=now, dry_run=False)
    assert (report.files, report.blobs) == (2, 3)
    assert report.bytes == len(b"C") + len(b"stray") + len(b"partial")
    kept = {in_field["id"], in_row["id"], in_deleted["id"], fresh["id"]}
    assert _ids(migrated_engine) == kept and same_bytes["id"] not in kept
    assert not blob_path(root, loose["sha256"]).exists() and not stray.exists()
    assert not leftover.exists()
    assert blob_path(root, in_field["sha256"]).read_bytes() == b"A"
    assert client.get(f"/api/v1/files/{in_field['id']}").content == b"A"
    again = collect_garbage(migrated_engine, root=root, now=now, dry_run=False)
    assert (again.files, again.blobs) == (0, 0)


def test_cli_files_gc(
    client: TestClient, gc_app: str, migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    loose = _upload(client, b"loose bytes")
    _age(migrated_engine, 2)
    url = migrated_engine.url.render_as_string(hide_password=False)
    options = ["--database-url", url, "--data-dir", str(tmp_path)]
    runner = CliRunner()
    dry = runner.invoke(cli, [*options, "files", "gc", "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0 and "would delete 1 stored files and 1 blobs" in dry.output
    assert loose["id"] in _ids(migrated_engine)
    young = runner.invoke(cli, [*options, "files", "gc", "--grace-hours", "72"])
    assert young.exit_code == 0 and "deleted 0 stored files" in young.output
    real = runner.invoke(cli, [*options, "files", "gc"], catch_exceptions=False)
    assert real.exit_code == 0 and "deleted 1 stored files and 1 blobs (11 bytes)" in real.output
    assert _ids(migrated_engine) == set()
