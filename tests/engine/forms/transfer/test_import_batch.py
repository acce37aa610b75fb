"""The import's batch path: a statement per table per batch, with the API's rules per row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.forms.service import RecordService
from engine.forms.transfer_service import ImportOptions, TransferService
from engine.installer import import_bundle
from engine.registry import DefinitionRegistry
from engine.storage.files import FileStore


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def _run(service: TransferService, app: str, form: str, data: bytes, **options: Any) -> Any:
    return service.import_file(
        app=app,
        form=form,
        upload=io.BytesIO(data),
        file_name="upload.csv",
        options=ImportOptions(**options),
        actor=None,
    )


def _report_codes(service: TransferService, app: str, form: str, job_id: int) -> list[str]:
    export = service.error_report(app=app, form=form, job_id=job_id, file_format="csv")
    text = b"".join(export.chunks).decode("utf-8-sig")
    return [row[-2] for row in list(csv.reader(io.StringIO(text)))[1:]]


@pytest.fixture
def transfer(records_app: str, migrated_engine: sa.Engine, tmp_path: Path) -> TransferService:
    return TransferService(
        db=migrated_engine, registry=DefinitionRegistry(), data_dir=tmp_path, batch_size=4
    )


@pytest.fixture
def records(records_app: str, migrated_engine: sa.Engine) -> RecordService:
    return RecordService(db=migrated_engine, registry=DefinitionRegistry())


def test_batches_write_children_links_autonumbers_and_history(
    transfer: TransferService, records: RecordService, migrated_engine: sa.Engine
) -> None:
    acme = records.create(app="rec", form="customer", data={"name": "Acme"}, actor=None).record
    tags = [
        records.create(app="rec", form="tag", data={"label": label}, actor=None).record.id
        for label in ("T2", "other", "T5")
    ]
    rows: list[list[Any]] = [["subject", "hours", "customer", "tags", "items", "tag_choice"]]
    for i in range(1, 7):
        items = json.dumps([{"sku": f"S{i}", "qty": i}, {"sku": "X", "qty": 1}])
        choice = {2: tags[0], 5: tags[2]}.get(i, "")
        rows.append([f"T{i}", i, "Acme", f"{tags[0]}; {tags[1]}", items, choice])
    rows[3][2] = "Nobody"  # row 3: no customer has that title
    rows[4][5] = str(tags[1])  # row 4: a tag the relation's filter excludes (label != subject)
    job = _run(transfer, "rec", "ticket", _csv(rows), mode="valid_rows")
    assert (job.rows_written, job.rows_failed) == (4, 2)
    assert sorted(_report_codes(transfer, "rec", "ticket", job.id)) == [
        "record.relation-filtered",
        "transfer.unknown-reference",
    ]
    with migrated_engine.connect() as conn:
        query = sa.text("SELECT id FROM rec__ticket ORDER BY id")
        ids = [int(i) for i in conn.execute(query).scalars()]
    got = [records.get(app="rec", form="ticket", record_id=i).record.values for i in ids]
    assert [v["subject"] for v in got] == ["T1", "T2", "T5", "T6"]
    numbers = [v["number"][-4:] for v in got]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    assert all(v["customer"] == acme.id and v["tags"] == tags[:2] for v in got)
    assert [row["sku"] for row in got[2]["items"]] == ["S5", "X"] and got[2]["item_qty"] == 6
    assert got[1]["tag_choice"] == tags[0] and got[2]["tag_choice"] == tags[2]
    history = records.history(app="rec", form="ticket", record_id=ids[0])
    assert [(e.action, e.version) for e in history] == [("create", 1)]
    assert history[0].changes["subject"] == [None, "T1"]
    # The next record created by the API continues the autonumber sequence.
    after = records.create(app="rec", form="ticket", data={"subject": "api"}, actor=None).record
    assert after.values["number"][-4:] > numbers[-1]


def test_a_unique_clash_falls_back_to_row_by_row(transfer: TransferService) -> None:
    data = _csv([["name"], ["Acme"], ["Beta"], ["Acme"], ["Gamma"], ["Delta"]])
    job = _run(transfer, "rec", "customer", data, mode="valid_rows")
    assert (job.rows_written, job.rows_failed) == (4, 1)
    assert _report_codes(transfer, "rec", "customer", job.id) == ["record.unique-violation"]
    again = _run(transfer, "rec", "customer", _csv([["name"], ["Zeta"], ["Acme"]]))
    assert (again.status, again.rows_written) == ("failed", 0)  # all or nothing


DOC_FORM = {
    "key": "doc",
    "label": "Document",
    "fields": [
        {"key": "name", "type": "text"},
        {"key": "file", "type": "attachment"},
    ],
}


def test_file_references_are_resolved_or_refused_per_row(
    migrated_engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "imp_bundle"
    (folder / "forms").mkdir(parents=True)
    (folder / "bundle.yaml").write_text('key: imp\nname: Imp\nversion: 1.0.0\nengine: ">=0.1"\n')
    (folder / "forms" / "doc.yaml").write_text(json.dumps(DOC_FORM))
    import_bundle(db=migrated_engine, bundle=load_bundle(folder))
    with migrated_engine.begin() as conn:
        stored = FileStore(conn, root=tmp_path / "files").put(
            stream=io.BytesIO(b"real bytes"),
            name="real.pdf",
            content_type="application/pdf",
            actor=None,
            max_bytes=1000,
        )
    lying = {**stored.ref(), "size": 1, "name": "fake.exe"}
    unknown = {**stored.ref(), "id": "no-such-file"}
    data = _csv([["name", "file"], ["a", json.dumps(lying)], ["b", json.dumps(unknown)]])
    transfer = TransferService(db=migrated_engine, registry=DefinitionRegistry(), data_dir=tmp_path)
    job = _run(transfer, "imp", "doc", data, mode="valid_rows")
    assert (job.rows_written, job.rows_failed) == (1, 1)
    assert _report_codes(transfer, "imp", "doc", job.id) == ["submission.unknown-file"]
    records = RecordService(db=migrated_engine, registry=DefinitionRegistry())
    [file] = records.get(app="imp", form="doc", record_id=1).record.values["file"]
    assert (file["name"], file["size"]) == ("real.pdf", len(b"real bytes"))
