"""FormRecordStore on real tables (SQLite and PostgreSQL): columns, child rows, links, locking,
unique and relation conflicts, integrity on delete, lookups and rollups, autonumbers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError, SubmissionError
from engine.registry import DefinitionRegistry
from engine.storage.form_records import FormRecordStore, RecordConflict, build_record_layout
from engine.storage.record_meta import RecordMetaStore
from engine.storage.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
INJECTION = "'; DROP TABLE rec__ticket; -- <script>alert(1)</script> \" OR 1=1"


class Stores:
    """Opens a unit of work with a store per form of the `rec` app."""

    def __init__(self, uow_factory: UowFactory) -> None:
        self._factory = uow_factory
        self._registry = DefinitionRegistry()
        self._layouts: dict[str, Any] = {}

    def layout(self, uow: UnitOfWork, form: str) -> Any:
        if form not in self._layouts:
            definition = self._registry.form(uow, app="rec", key=form)
            self._layouts[form] = build_record_layout(
                app="rec", form=definition.compiled, forms=definition.forms
            )
        return self._layouts[form]

    @contextmanager
    def open(self, form: str) -> Iterator[tuple[UnitOfWork, FormRecordStore]]:
        with self._factory() as uow:
            yield uow, FormRecordStore(uow.conn, layout=self.layout(uow, form), clock=lambda: NOW)

    def write(self, form: str, action: Callable[[FormRecordStore], Any]) -> Any:
        with self.open(form) as (uow, store):
            result = action(store)
            uow.commit()
        return result

    def read(self, form: str, action: Callable[[FormRecordStore], Any]) -> Any:
        with self.open(form) as (_uow, store):
            return action(store)


@pytest.fixture
def stores(records_app: str, uow_factory: UowFactory) -> Stores:
    return Stores(uow_factory)


def _insert(stores: Stores, form: str, values: dict[str, Any]) -> int:
    return int(stores.write(form, lambda s: s.insert(values=values, actor=None)))


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_insert_and_read_every_storage_shape(stores: Stores) -> None:
    customer = _insert(stores, "customer", {"name": "ACME"})
    tag_a, tag_b = _insert(stores, "tag", {"label": "a"}), _insert(stores, "tag", {"label": "b"})
    site = {"province": "浙江省", "city": "杭州市", "district": "西湖区", "detail": INJECTION}
    ticket = _insert(
        stores,
        "ticket",
        {
            "subject": INJECTION,
            "status": "open",
            "hours": Decimal("1.50"),
            "customer": customer,
            "site": site,
            "tags": [tag_b, tag_a],
            "items": [{"sku": "X-1", "qty": Decimal(2)}, {"sku": "X-2", "qty": Decimal(3)}],
        },
    )
    record = stores.read("ticket", lambda s: s.get(record_id=ticket))
    assert record.version == 1 and record.deleted_at is None
    assert record.values["subject"] == INJECTION
    assert record.values["site"] == site
    assert record.values["hours"] == Decimal("1.50")
    assert record.values["tags"] == [tag_b, tag_a]
    assert [row["sku"] for row in record.values["items"]] == ["X-1", "X-2"]
    assert record.values["customer_name"] == "ACME"
    assert Decimal(record.values["item_qty"]) == 5
    assert record.values["number"] == "T-20261123-0001"


def test_rollups_follow_related_records(stores: Stores) -> None:
    customer = _insert(stores, "customer", {"name": "ACME"})
    first = _insert(
        stores,
        "ticket",
        {"subject": "a", "status": "open", "customer": customer, "hours": Decimal("2")},
    )
    _insert(
        stores,
        "ticket",
        {"subject": "b", "status": "closed", "customer": customer, "hours": Decimal("3.25")},
    )
    values = stores.read("customer", lambda s: s.get(record_id=customer)).values
    assert values["ticket_count"] == 2 and values["open_count"] == 1
    assert Decimal(values["total_hours"]) == Decimal("5.25")
    assert sorted(values["tickets"]) == sorted(values["tickets"]) and len(values["tickets"]) == 2
    stores.write("ticket", lambda s: s.soft_delete(record_id=first, actor=None))
    values = stores.read("customer", lambda s: s.get(record_id=customer)).values
    assert values["ticket_count"] == 1 and values["open_count"] == 0
    assert Decimal(values["total_hours"]) == Decimal("3.25")


def test_stale_version_changes_nothing(stores: Stores) -> None:
    ticket = _insert(stores, "ticket", {"subject": "before"})
    assert (
        stores.write(
            "ticket",
            lambda s: s.update(record_id=ticket, version=1, changes={"subject": "v2"}, actor=None),
        )
        == 2
    )
    with pytest.raises(RecordConflict) as caught:
        stores.write(
            "ticket",
            lambda s: s.update(
                record_id=ticket, version=1, changes={"subject": "lost", "items": []}, actor=None
            ),
        )
    assert caught.value.code == "record.stale-version"
    record = stores.read("ticket", lambda s: s.get(record_id=ticket))
    assert (record.version, record.values["subject"]) == (2, "v2")


def test_subform_rows_are_replaced_with_parent_and_rolled_back_with_it(
    stores: Stores, migrated_engine: sa.Engine
) -> None:
    ticket = _insert(stores, "ticket", {"subject": "s", "items": [{"sku": "A"}, {"sku": "B"}]})
    stores.write(
        "ticket",
        lambda s: s.update(
            record_id=ticket, version=1, changes={"items": [{"sku": "C"}]}, actor=None
        ),
    )
    assert _count(migrated_engine, "rec__ticket__items") == 1
    with stores.open("ticket") as (_uow, store):  # not committed
        store.update(record_id=ticket, version=2, changes={"items": [{"sku": "D"}] * 3}, actor=None)
    assert _count(migrated_engine, "rec__ticket__items") == 1
    with stores.open("ticket") as (_uow, store):  # a failing insert takes its rows with it
        with pytest.raises(SubmissionError):
            store.insert(
                values={"subject": "x", "items": [{"sku": "E"}], "customer": 999}, actor=None
            )
    assert _count(migrated_engine, "rec__ticket__items") == 1


def test_relation_to_missing_or_deleted_record_is_a_field_error(stores: Stores) -> None:
    gone = _insert(stores, "customer", {"name": "Gone"})
    stores.write("customer", lambda s: s.soft_delete(record_id=gone, actor=None))
    tag = _insert(stores, "tag", {"label": "t"})
    with pytest.raises(SubmissionError) as caught:
        _insert(stores, "ticket", {"subject": "s", "customer": gone, "tags": [tag, 12345]})
    found = {(e.loc, e.code) for e in caught.value.errors}
    assert found == {("customer", "record.missing-relation"), ("tags/1", "record.missing-relation")}


def test_unique_violation_names_the_field_and_soft_deleted_values_are_free(
    stores: Stores,
) -> None:
    first = _insert(stores, "device", {"serial": "SN1"})
    with pytest.raises(RecordConflict) as caught:
        _insert(stores, "device", {"serial": "SN1"})
    assert (caught.value.code, caught.value.path) == ("record.unique-violation", "serial")
    stores.write("device", lambda s: s.soft_delete(record_id=first, actor=None))
    second = _insert(stores, "device", {"serial": "SN1"})
    assert second != first
    with pytest.raises(RecordConflict) as caught:  # restoring would duplicate it
        stores.write("device", lambda s: s.restore(record_id=first, actor=None))
    assert caught.value.path == "serial"


def test_delete_refused_while_referenced_and_cleared_where_asked(stores: Stores) -> None:
    customer = _insert(stores, "customer", {"name": "ACME"})
    device = _insert(stores, "device", {"serial": "D1"})
    ticket = _insert(stores, "ticket", {"subject": "s", "customer": customer, "device": device})
    with pytest.raises(RecordConflict) as caught:
        stores.write("customer", lambda s: s.soft_delete(record_id=customer, actor=None))
    assert caught.value.code == "record.delete-refused"
    assert [(r["form"], r["id"]) for r in caught.value.records] == [("ticket", ticket)]
    stores.write("device", lambda s: s.soft_delete(record_id=device, actor=None))
    record = stores.read("ticket", lambda s: s.get(record_id=ticket))
    assert record.values["device"] is None and record.version == 2
    stores.write("ticket", lambda s: s.soft_delete(record_id=ticket, actor=None))
    stores.write("customer", lambda s: s.soft_delete(record_id=customer, actor=None))


def test_soft_delete_and_restore(stores: Stores) -> None:
    tag = _insert(stores, "tag", {"label": "t"})
    assert stores.write("tag", lambda s: s.soft_delete(record_id=tag, actor=None)) == 2
    with pytest.raises(NotFoundError):
        stores.read("tag", lambda s: s.get(record_id=tag))
    assert stores.read("tag", lambda s: s.get(record_id=tag, include_deleted=True)).deleted_at
    with pytest.raises(NotFoundError):
        stores.write("tag", lambda s: s.soft_delete(record_id=tag, actor=None))
    assert stores.write("tag", lambda s: s.restore(record_id=tag, actor=None)) == 3
    with pytest.raises(ConflictError) as caught:
        stores.write("tag", lambda s: s.restore(record_id=tag, actor=None))
    assert caught.value.code == "record.not-deleted"


def test_autonumber_resets_by_period(stores: Stores) -> None:
    ids = [_insert(stores, "ticket", {"subject": str(i)}) for i in range(3)]
    records = stores.read("ticket", lambda s: s.get_many(ids=ids))
    numbers = [record.values["number"] for record in records]
    assert numbers == ["T-20261123-0001", "T-20261123-0002", "T-20261123-0003"]
    with stores.open("ticket") as (uow, _store):
        meta = RecordMetaStore(uow.conn, app="rec", form="ticket")
        assert meta.next_number(field="number", period="20261124") == 1


def _threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as err:  # collected and asserted on by the test
            results[index] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_creates_never_share_an_autonumber(stores: Stores, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    results = _threads(8, lambda i: _insert(stores, "ticket", {"subject": f"t{i}"}))
    assert all(isinstance(r, int) for r in results), results
    numbers = [
        stores.read("ticket", lambda s, r=r: s.get(record_id=r)).values["number"] for r in results
    ]
    assert sorted(numbers) == [f"T-20261123-{n:04d}" for n in range(1, 9)]


def test_concurrent_duplicate_unique_values_one_wins(stores: Stores, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    results = _threads(6, lambda _i: _insert(stores, "device", {"serial": "SAME"}))
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, RecordConflict)]
    assert len(winners) == 1 and len(losers) == 5
    assert {(e.code, e.path) for e in losers} == {("record.unique-violation", "serial")}
