"""RecordService on both databases: every write path validates, writes history, and commits once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError, SubmissionError
from engine.forms.service import RecordService
from engine.registry import DefinitionRegistry
from engine.storage.form_records import RecordConflict

INJECTION = "Robert'); DROP TABLE rec__ticket;-- <img src=x onerror=alert(1)>"


@pytest.fixture
def service(records_app: str, migrated_engine: sa.Engine) -> RecordService:
    return RecordService(db=migrated_engine, registry=DefinitionRegistry())


def _create(service: RecordService, form: str, data: dict[str, Any], **kw: Any) -> Any:
    return service.create(app="rec", form=form, data=data, actor=None, **kw)


def _history(service: RecordService, form: str, record_id: int) -> list[tuple[str, int, dict]]:
    entries = service.history(app="rec", form=form, record_id=record_id)
    return [(e.action, e.version, e.changes) for e in entries]


def test_create_validates_and_writes_history(service: RecordService) -> None:
    customer = _create(service, "customer", {"name": INJECTION}).record
    assert customer.values["name"] == INJECTION
    with pytest.raises(SubmissionError) as caught:
        _create(service, "ticket", {"subject": "x" * 201, "hours": "many"})
    assert {e.loc for e in caught.value.errors} >= {"subject", "hours"}
    ticket = _create(service, "ticket", {"subject": "Hi", "customer": customer.id}).record
    assert ticket.values["status"] == "open"  # the default
    [(action, version, changes)] = _history(service, "ticket", ticket.id)
    assert (action, version) == ("create", 1)
    assert changes["subject"] == [None, "Hi"] and changes["customer"] == [None, customer.id]


def test_update_is_partial_and_records_old_and_new(service: RecordService) -> None:
    ticket = _create(service, "ticket", {"subject": "A", "hours": 2}).record
    updated = service.update(
        app="rec", form="ticket", record_id=ticket.id, data={"hours": 3.5}, version=1, actor=None
    ).record
    assert updated.version == 2 and updated.values["subject"] == "A"
    assert _history(service, "ticket", ticket.id)[-1] == ("update", 2, {"hours": [2, 3.5]})
    same = service.update(
        app="rec", form="ticket", record_id=ticket.id, data={"hours": 3.5}, version=2, actor=None
    ).record
    assert same.version == 2  # nothing changed, nothing written
    assert len(_history(service, "ticket", ticket.id)) == 2


def test_stale_version_is_refused_and_nothing_changes(service: RecordService) -> None:
    ticket = _create(service, "ticket", {"subject": "A"}).record
    service.update(
        app="rec", form="ticket", record_id=ticket.id, data={"subject": "B"}, version=1, actor=None
    )
    with pytest.raises(ConflictError) as caught:
        service.update(
            app="rec",
            form="ticket",
            record_id=ticket.id,
            data={"subject": "C"},
            version=1,
            actor=None,
        )
    assert caught.value.code == "record.stale-version"
    record = service.get(app="rec", form="ticket", record_id=ticket.id).record
    assert (record.version, record.values["subject"]) == (2, "B")
    assert len(_history(service, "ticket", ticket.id)) == 2


def test_idempotency_key_replays_or_refuses(service: RecordService) -> None:
    first = _create(service, "tag", {"label": "x"}, idempotency_key="k-1")
    again = _create(service, "tag", {"label": "x"}, idempotency_key="k-1")
    assert again.record.id == first.record.id and again.replayed
    with pytest.raises(ConflictError) as caught:
        _create(service, "tag", {"label": "y"}, idempotency_key="k-1")
    assert caught.value.code == "record.idempotency-mismatch"
    other = _create(service, "tag", {"label": "x"}, idempotency_key="k-2")
    assert other.record.id != first.record.id


def test_concurrent_requests_with_one_idempotency_key_make_one_record(
    service: RecordService, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    results: list[Any] = [None] * 5
    barrier = threading.Barrier(5)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = _create(service, "tag", {"label": "x"}, idempotency_key="same").record.id

    threads = [threading.Thread(target=run, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0] is not None


def test_delete_restore_and_their_history(service: RecordService) -> None:
    customer = _create(service, "customer", {"name": "C"}).record
    ticket = _create(service, "ticket", {"subject": "T", "customer": customer.id}).record
    with pytest.raises(RecordConflict) as caught:
        service.delete(app="rec", form="customer", record_id=customer.id, actor=None)
    assert caught.value.code == "record.delete-refused"
    deleted = service.delete(app="rec", form="ticket", record_id=ticket.id, actor=None).record
    assert deleted.deleted_at is not None and deleted.version == 2
    with pytest.raises(NotFoundError):
        service.get(app="rec", form="ticket", record_id=ticket.id)
    service.restore(app="rec", form="ticket", record_id=ticket.id, actor=None)
    actions = [a for a, _v, _c in _history(service, "ticket", ticket.id)]
    assert actions == ["create", "delete", "restore"]


def test_relation_to_deleted_record_is_rejected(service: RecordService) -> None:
    customer = _create(service, "customer", {"name": "C"}).record
    service.delete(app="rec", form="customer", record_id=customer.id, actor=None)
    with pytest.raises(SubmissionError) as caught:
        _create(service, "ticket", {"subject": "T", "customer": customer.id})
    assert [(e.loc, e.code) for e in caught.value.errors] == [
        ("customer", "record.missing-relation")
    ]


def test_comments(service: RecordService) -> None:
    tag = _create(service, "tag", {"label": "x"}).record
    service.add_comment(app="rec", form="tag", record_id=tag.id, body=INJECTION, actor=None)
    service.add_comment(app="rec", form="tag", record_id=tag.id, body="second", actor=None)
    bodies = [c.body for c in service.list_comments(app="rec", form="tag", record_id=tag.id)]
    assert bodies == [INJECTION, "second"]
    with pytest.raises(SubmissionError):
        service.add_comment(app="rec", form="tag", record_id=tag.id, body="  ", actor=None)
    with pytest.raises(NotFoundError):
        service.add_comment(app="rec", form="tag", record_id=9999, body="x", actor=None)


def test_bulk_update_is_all_or_nothing(service: RecordService) -> None:
    ids = [_create(service, "ticket", {"subject": f"t{i}"}).record.id for i in range(3)]
    report = service.bulk_update(
        app="rec", form="ticket", ids=ids, data={"status": "closed"}, actor=None
    )
    assert report.applied and [item.version for item in report.items] == [2, 2, 2]
    failing = service.bulk_update(
        app="rec",
        form="ticket",
        ids=[*ids, 4242],
        data={"status": "open"},
        actor=None,
        versions={ids[0]: 1},
    )
    assert not failing.applied
    by_id = {item.id: item for item in failing.items}
    assert by_id[ids[0]].code == "record.stale-version"
    assert by_id[ids[1]].ok and by_id[4242].code == "record.not-found"
    for record_id in ids:  # nothing changed
        record = service.get(app="rec", form="ticket", record_id=record_id).record
        assert (record.values["status"], record.version) == ("closed", 2)


def test_bulk_update_reports_invalid_values(service: RecordService) -> None:
    ids = [_create(service, "ticket", {"subject": f"t{i}"}).record.id for i in range(2)]
    report = service.bulk_update(
        app="rec", form="ticket", ids=ids, data={"status": "nope"}, actor=None
    )
    assert not report.applied
    assert all(item.reason == "invalid" and item.errors for item in report.items)


def test_bulk_delete_is_all_or_nothing(service: RecordService) -> None:
    customer = _create(service, "customer", {"name": "C"}).record
    _create(service, "ticket", {"subject": "T", "customer": customer.id})
    free = _create(service, "customer", {"name": "D"}).record
    report = service.bulk_delete(app="rec", form="customer", ids=[free.id, customer.id], actor=None)
    assert not report.applied
    assert [item.ok for item in report.items] == [True, False]
    assert service.get(app="rec", form="customer", record_id=free.id).record.deleted_at is None
    report = service.bulk_delete(app="rec", form="customer", ids=[free.id], actor=None)
    assert report.applied


def test_unique_conflict_carries_the_field(service: RecordService) -> None:
    _create(service, "device", {"serial": "S"})
    with pytest.raises(RecordConflict) as caught:
        _create(service, "device", {"serial": "S"})
    assert (caught.value.code, caught.value.path) == ("record.unique-violation", "serial")


def test_registry_sees_a_new_definition_version(
    service: RecordService, records_bundle_dir: Any, migrated_engine: sa.Engine
) -> None:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    before = service.definition(app="rec", form="tag")
    assert service.definition(app="rec", form="tag") is before  # cached
    path = records_bundle_dir / "forms" / "tag.yaml"
    path.write_text(path.read_text() + "  - {key: color, type: text}\n", encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(records_bundle_dir))
    after = service.definition(app="rec", form="tag")
    assert after.version == before.version + 1 and "color" in after.compiled.fields
    record = _create(service, "tag", {"label": "x", "color": "red"}).record
    assert record.values["color"] == "red"


def test_unknown_form_is_not_found(service: RecordService) -> None:
    with pytest.raises(NotFoundError) as caught:
        service.get(app="rec", form="nope", record_id=1)
    assert caught.value.code == "record.form-not-found"


def test_expressions_read_related_records(service: RecordService) -> None:
    customer = _create(service, "customer", {"name": "ACME"}).record
    blocked = _create(service, "device", {"serial": "BLOCKED"}).record
    fine = _create(service, "device", {"serial": "OK-1"}).record
    with pytest.raises(SubmissionError) as caught:
        _create(service, "ticket", {"subject": "T", "device": blocked.id})
    assert [(e.loc, e.code) for e in caught.value.errors] == [("device", "validation.blocked")]
    ticket = _create(service, "ticket", {"subject": "T", "customer": customer.id}).record
    assert ticket.values["label"] == "T @ ACME"  # a formula over a lookup
    other = _create(service, "customer", {"name": "Other"}).record
    changed = service.update(
        app="rec",
        form="ticket",
        record_id=ticket.id,
        version=1,
        actor=None,
        data={"customer": other.id, "device": fine.id},
    ).record
    assert changed.values["label"] == "T @ Other"
    with pytest.raises(SubmissionError):
        service.update(
            app="rec",
            form="ticket",
            record_id=ticket.id,
            version=2,
            actor=None,
            data={"device": blocked.id},
        )


def test_relation_filter_is_enforced_on_write(service: RecordService) -> None:
    match = _create(service, "tag", {"label": "Printer"}).record
    other = _create(service, "tag", {"label": "Scanner"}).record
    ticket = _create(service, "ticket", {"subject": "Printer", "tag_choice": match.id}).record
    with pytest.raises(SubmissionError) as caught:
        _create(service, "ticket", {"subject": "Printer", "tag_choice": other.id})
    assert [(e.loc, e.code) for e in caught.value.errors] == [
        ("tag_choice", "record.relation-filtered")
    ]
    with pytest.raises(SubmissionError) as caught:  # the filter reads a field that changes
        service.update(
            app="rec",
            form="ticket",
            record_id=ticket.id,
            version=1,
            actor=None,
            data={"subject": "Scanner"},
        )
    assert caught.value.errors[0].code == "record.relation-filtered"
    changed = service.update(
        app="rec",
        form="ticket",
        record_id=ticket.id,
        version=1,
        actor=None,
        data={"subject": "Scanner", "tag_choice": other.id},
    ).record
    assert changed.values["tag_choice"] == other.id


def test_on_delete_clear_writes_history_of_the_cleared_record(service: RecordService) -> None:
    device = _create(service, "device", {"serial": "D-9"}).record
    ticket = _create(service, "ticket", {"subject": "T", "device": device.id}).record
    service.delete(app="rec", form="device", record_id=device.id, actor=None)
    record = service.get(app="rec", form="ticket", record_id=ticket.id).record
    assert (record.values["device"], record.version) == (None, 2)
    assert _history(service, "ticket", ticket.id)[-1] == (
        "update",
        2,
        {"device": [device.id, None]},
    )
