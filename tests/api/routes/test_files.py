"""Uploads stored by content hash, downloads as attachments, and file references in records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.errors import SubmissionError
from engine.forms.attachments import resolve_file_refs
from engine.forms.compiler import compile_form
from engine.forms.spec import FormSpec
from engine.storage.files import FileStore, clean_name

PDF = b"%PDF-1.4 fake report\n" * 100


def _upload(client: TestClient, data: bytes, name: str = "报告.pdf") -> dict[str, object]:
    response = client.post("/api/v1/files", files={"file": (name, data, "application/pdf")})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_upload_then_download_the_same_bytes(client: TestClient) -> None:
    ref = _upload(client, PDF)

    assert ref["size"] == len(PDF) and ref["sha256"] == hashlib.sha256(PDF).hexdigest()
    response = client.get(f"/api/v1/files/{ref['id']}")
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_same_bytes_are_stored_once_under_two_ids(client: TestClient, tmp_path: Path) -> None:
    first, second = _upload(client, PDF), _upload(client, PDF, name="copy.pdf")

    assert first["id"] != second["id"]
    blobs = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert [p.name for p in blobs] == [first["sha256"]]


def test_names_lose_folders_and_control_characters(client: TestClient) -> None:
    ref = _upload(client, b"x", name="..\\..\\windows\\evil.txt")

    assert ref["name"] == "evil.txt"
    assert clean_name("../../etc/pass\x01wd") == "pass_wd"


def test_too_large_is_413_and_nothing_is_named(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/api/v1/files", files={"file": ("big.bin", b"0" * 2_000_001)})

    assert response.status_code == 413
    assert response.json()["code"] == "file.too-large"
    assert not [p for p in (tmp_path / "files").rglob("*") if p.is_file()]


def test_unknown_file_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/files/guessed-id")

    assert response.status_code == 404 and response.json()["code"] == "file.not-found"


def test_anonymous_callers_cannot_upload(anonymous_client: TestClient) -> None:
    response = anonymous_client.post("/api/v1/files", files={"file": ("a.txt", b"a")})

    assert response.status_code == 401


FORM = FormSpec.model_validate(
    {
        "key": "visit",
        "label": "Visit",
        "fields": [
            {"key": "photos", "type": "image", "multiple": True},
            {"key": "signature", "type": "signature"},
            {"key": "items", "type": "subform", "fields": [{"key": "proof", "type": "attachment"}]},
        ],
    }
)


def test_records_get_the_stored_metadata_not_the_claimed_one(
    conn: sa.Connection, tmp_path: Path
) -> None:
    files = FileStore(conn, root=tmp_path)
    stored = files.put(stream=_Bytes(PDF), name="a.pdf", content_type="application/pdf",
                       actor=None, max_bytes=10**6)  # fmt: skip
    claimed = {"id": stored.id, "name": "tiny.png", "size": 1, "content_type": "image/png"}

    clean = resolve_file_refs(
        conn=conn,
        form=compile_form(FORM),
        data={"photos": [claimed], "signature": stored.id, "items": [{"proof": [claimed]}]},
    )

    assert clean["photos"] == [stored.ref()]
    assert clean["signature"] == stored.ref()
    assert clean["items"] == [{"proof": [stored.ref()]}]


def test_unknown_references_are_errors_at_their_paths(conn: sa.Connection, tmp_path: Path) -> None:
    data = {"photos": [{"id": "nope"}], "items": [{"proof": "nope"}, {"proof": None}]}

    with pytest.raises(SubmissionError) as info:
        resolve_file_refs(conn=conn, form=compile_form(FORM), data=data)

    assert [(e.loc, e.code) for e in info.value.errors] == [
        ("photos", "submission.unknown-file"),
        ("items/0/proof", "submission.unknown-file"),
    ]


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


def test_records_api_keeps_stored_metadata_and_refuses_unknown_files(
    client: TestClient, migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    pack = tmp_path / "pack"
    (pack / "forms").mkdir(parents=True)
    (pack / "bundle.yaml").write_text("key: docs\nname: Docs\nversion: 1.0.0\n")
    (pack / "forms" / "note.yaml").write_text(
        "key: note\nlabel: Note\nfields:\n"
        "  - {key: title, type: text, required: true}\n"
        "  - {key: files, type: attachment, multiple: true, max_size_mb: 1}\n"
    )
    import_bundle(db=migrated_engine, bundle=load_bundle(pack))
    ref = _upload(client, PDF)
    url = "/api/v1/apps/docs/forms/note/records"

    made = client.post(url, json={"title": "a", "files": [dict(ref, size=1, name="x.exe")]})
    bad = client.post(url, json={"title": "b", "files": [{"id": "forged"}]})

    assert made.status_code == 201, made.text
    assert made.json()["files"] == [ref]
    assert bad.status_code == 422
    assert [(e["path"], e["code"]) for e in bad.json()["errors"]] == [
        ("files", "submission.unknown-file")
    ]
