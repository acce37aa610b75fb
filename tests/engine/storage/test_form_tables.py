"""The schema synchroniser on real databases, with small stand-ins for form definitions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import ConflictError, DefinitionError
from engine.storage.form_tables import (
    AddColumn,
    CreateIndex,
    CreateTable,
    apply_form_table_plan,
    apply_form_table_plans,
    describe,
    form_tables,
    plan_form_table,
    plan_form_tables,
)


@dataclass(frozen=True)
class F:
    """A field stand-in: `key`, `type` and whatever options the test needs."""

    key: str
    type: str
    unique: bool = False
    retired: bool = False
    multiple: bool = False
    decimals: int | None = None
    max_length: int | None = None
    form: str | None = None
    result_type: str | None = None
    fields: tuple[F, ...] = ()
    inverse: str | None = None


@dataclass(frozen=True)
class Form:
    key: str
    fields: tuple[F, ...]
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()


CUSTOMER = Form("customer", (F("name", "text", unique=True), F("vip", "boolean")))

EVERY_TYPE = Form(
    "ticket",
    (
        F("title", "text", max_length=120),
        F("notes", "textarea"),
        F("body", "rich_text"),
        F("hours", "number"),
        F("qty", "number", decimals=3),
        F("price", "money"),
        F("discount", "percent"),
        F("due", "date"),
        F("seen_at", "datetime"),
        F("slot", "time"),
        F("window", "date_range"),
        F("priority", "select"),
        F("tags", "multiselect"),
        F("region", "cascade"),
        F("urgent", "boolean"),
        F("stars", "rating"),
        F("mail", "email"),
        F("phone", "phone"),
        F("site", "url"),
        F("addr", "address"),
        F("geo", "location"),
        F("photos", "image", multiple=True),
        F("files", "attachment"),
        F("sign", "signature"),
        F("agent", "user"),
        F("watchers", "user", multiple=True),
        F("team", "department"),
        F("customer", "relation", form="customer"),
        F("related", "relation", form="customer", multiple=True),
        F("customer_name", "lookup"),
        F("item_count", "rollup"),
        F("total", "formula", result_type="money"),
        F("code", "autonumber"),
        F("items", "subform", fields=(F("sku", "text"), F("amount", "money"))),
        F("s1", "section"),
        F("d1", "divider"),
        F("x1", "description"),
    ),
)


def _apply(conn: sa.Connection, app: str, form: Form) -> list[str]:
    plan = plan_form_table(conn, app=app, form=form)
    assert plan.problems == ()
    apply_form_table_plan(conn, plan)
    return describe(plan)


def _columns(conn: sa.Connection, table: str) -> dict[str, Any]:
    return {c["name"]: c for c in sa.inspect(conn).get_columns(table)}


def _now() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_create_every_field_type_then_replan_is_empty(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    lines = _apply(conn, "t", EVERY_TYPE)
    assert "+ table t__ticket" in lines
    assert "+ table t__ticket__items" in lines
    assert "+ table t__ticket__related" in lines
    columns = _columns(conn, "t__ticket")
    for name in ("window__start", "window__end", "addr__province", "addr__detail", "geo__lng"):
        assert name in columns
    for absent in ("customer_name", "item_count", "s1", "d1", "x1", "items", "related"):
        assert absent not in columns
    assert {"id", "created_at", "updated_by", "owner_id", "version", "deleted_at"} <= set(columns)
    assert {"parent_id", "position", "sku", "amount"} <= set(_columns(conn, "t__ticket__items"))
    again = plan_form_table(conn, app="t", form=EVERY_TYPE)
    assert again.is_empty, describe(again)
    assert again.retired == () and again.problems == ()


def test_values_round_trip_in_typed_columns(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    _apply(conn, "t", EVERY_TYPE)
    customer = form_tables(app="t", form=CUSTOMER).main
    layout = form_tables(app="t", form=EVERY_TYPE)
    ticket, items = layout.main, layout.children["items"]
    assert layout.field_columns["window"] == ("window__start", "window__end")
    assert layout.field_columns["items.sku"] == ("sku",)
    assert layout.children["related"].name == "t__ticket__related"
    assert "customer_name" not in layout.field_columns
    stamp = {"created_at": _now(), "updated_at": _now()}
    customer_id = conn.execute(
        customer.insert().values(name="ACME", **stamp).returning(customer.c.id)
    ).scalar_one()
    ticket_id = conn.execute(
        ticket.insert()
        .values(
            title="Broken",
            qty=Decimal("1.250"),
            price=Decimal("10.50"),
            due=date(2026, 2, 1),
            tags=["a", "b"],
            customer=customer_id,
            code="WO-1",
            **stamp,
        )
        .returning(ticket.c.id)
    ).scalar_one()
    conn.execute(items.insert().values(parent_id=ticket_id, position=0, sku="X", amount=1))
    row = conn.execute(sa.select(ticket).where(ticket.c.id == ticket_id)).one()
    assert (row.tags, row.price, row.due, row.version) == (
        ["a", "b"],
        Decimal("10.50"),
        date(2026, 2, 1),
        1,
    )
    conn.execute(ticket.delete().where(ticket.c.id == ticket_id))
    assert conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one() == 0


def test_adding_fields_adds_columns_child_tables_and_indexes(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    small = Form("job", (F("title", "text"),))
    _apply(conn, "t", small)
    bigger = replace(
        small,
        fields=small.fields
        + (
            F("priority", "select"),
            F("owner", "user"),
            F("customer", "relation", form="customer"),
            F("ref", "text", unique=True),
            F("lines", "subform", fields=(F("sku", "text"),)),
        ),
    )
    plan = plan_form_table(conn, app="t", form=bigger)
    lines = describe(plan)
    assert "+ column t__job.priority VARCHAR(64)" in lines
    assert "+ table t__job__lines" in lines
    assert any(isinstance(step, CreateIndex) and step.index.unique for step in plan.steps)
    assert sum(isinstance(step, AddColumn) for step in plan.steps) == 4
    apply_form_table_plan(conn, plan)
    assert plan_form_table(conn, app="t", form=bigger).is_empty
    foreign = sa.inspect(conn).get_foreign_keys("t__job")
    assert {fk["referred_table"] for fk in foreign} >= {"users", "t__customer"}


def test_removed_field_is_retired_and_kept(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    without_vip = replace(CUSTOMER, fields=CUSTOMER.fields[:1])
    plan = plan_form_table(conn, app="t", form=without_vip)
    assert plan.is_empty
    assert [(r.table, r.column) for r in plan.retired] == [("t__customer", "vip")]
    assert "~ column t__customer.vip retired (kept)" in describe(plan)
    apply_form_table_plan(conn, plan)
    assert "vip" in _columns(conn, "t__customer")
    marked = replace(CUSTOMER, fields=(CUSTOMER.fields[0], F("vip", "boolean", retired=True)))
    assert plan_form_table(conn, app="t", form=marked).retired == ()


def test_type_change_is_a_problem_and_blocks_apply(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    changed = replace(CUSTOMER, fields=(CUSTOMER.fields[0], F("vip", "number")))
    plan = plan_form_table(conn, app="t", form=changed)
    assert [(p.code, p.path) for p in plan.problems] == [
        ("storage.type-change-unsupported", "/fields/1/type")
    ]
    with pytest.raises(DefinitionError) as caught:
        apply_form_table_plan(conn, plan)
    assert caught.value.problems == plan.problems


def test_problems_in_the_definition(conn: sa.Connection) -> None:
    form = Form(
        "odd",
        (
            F("version", "text"),
            F("where", "date_range"),
            F("where__start", "date"),
            F("wat", "hologram"),
            F("other", "relation", form="nowhere"),
        ),
    )
    plan = plan_form_table(conn, app="t", form=form)
    assert sorted((p.code, p.path) for p in plan.problems) == [
        ("storage.duplicate-column", "/fields/2/key"),
        ("storage.reserved-column", "/fields/0/key"),
        ("storage.unknown-field-type", "/fields/3/type"),
        ("storage.unknown-relation-target", "/fields/4/form"),
    ]


def test_relation_target_planned_in_the_same_publish(conn: sa.Connection) -> None:
    form = Form("order", (F("customer", "relation", form="crm.customer"),))
    assert plan_form_table(conn, app="t", form=form).problems != ()
    plan = plan_form_table(conn, app="t", form=form, planned_tables=["crm__customer"])
    assert plan.problems == ()


def test_unique_field_ignores_soft_deleted_rows(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    customer = sa.Table("t__customer", sa.MetaData(), autoload_with=conn)
    stamp = {"created_at": _now(), "updated_at": _now()}
    conn.execute(customer.insert().values(name="ACME", deleted_at=_now(), **stamp))
    conn.execute(customer.insert().values(name="ACME", **stamp))
    with pytest.raises(sa.exc.IntegrityError):
        with conn.begin_nested():
            conn.execute(customer.insert().values(name="ACME", **stamp))


def test_failed_apply_rolls_back_everything(conn: sa.Connection) -> None:
    _apply(conn, "t", CUSTOMER)
    customer = sa.Table("t__customer", sa.MetaData(), autoload_with=conn)
    stamp = {"created_at": _now(), "updated_at": _now()}
    more = replace(CUSTOMER, fields=CUSTOMER.fields + (F("note", "text"),), unique=(("vip",),))
    plan = plan_form_table(conn, app="t", form=more)
    # duplicates written after the plan was checked (a concurrent writer) still roll back
    conn.execute(customer.insert().values(name="A", vip=True, **stamp))
    conn.execute(customer.insert().values(name="B", vip=True, **stamp))
    conn.execute(customer.insert().values(name="C", vip=True, **stamp))
    assert isinstance(plan.steps[0], AddColumn) and isinstance(plan.steps[-1], CreateIndex)
    with pytest.raises(ConflictError) as caught:
        with conn.begin_nested():
            apply_form_table_plan(conn, plan)
    assert caught.value.code == "storage.unique-violation"
    assert getattr(caught.value, "constraint", None) == "uq_t__customer_vip"
    assert "note" not in _columns(conn, "t__customer")


def test_whole_publish_in_one_transaction(migrated_engine: sa.Engine) -> None:
    with migrated_engine.connect() as connection:
        with pytest.raises(RuntimeError), connection.begin():
            _apply(connection, "rb", CUSTOMER)
            raise RuntimeError("publish failed later")
        assert not sa.inspect(connection).has_table("rb__customer")


def test_long_names_fit_postgresql(conn: sa.Connection) -> None:
    app, form_key = "a" * 30, "f" * 30
    form = Form(form_key, (F("s" * 30, "subform", fields=(F("x" * 30, "text", unique=True),)),))
    plan = plan_form_table(conn, app=app, form=form)
    names = [step.table.name for step in plan.steps if isinstance(step, CreateTable)]
    assert all(len(name) <= 63 for name in names)
    apply_form_table_plan(conn, plan)
    assert plan_form_table(conn, app=app, form=form).is_empty


def test_forms_of_one_publish_are_ordered_by_relations(conn: sa.Connection) -> None:
    ticket = Form("ticket", (F("device", "relation", form="device"),))
    device = Form("device", (F("customer", "relation", form="customer"),))
    plans = plan_form_tables(conn, app="t", forms=[ticket, device, CUSTOMER])
    assert [plan.form for plan in plans] == ["customer", "device", "ticket"]
    apply_form_table_plans(conn, plans)
    assert all(p.is_empty for p in plan_form_tables(conn, app="t", forms=[ticket, device]))


def test_forms_pointing_at_each_other(conn: sa.Connection) -> None:
    ticket = Form("ticket", (F("device", "relation", form="device"),))
    device = Form(
        "device",
        (
            F("last_ticket", "relation", form="ticket"),
            F("tickets", "relation", form="ticket", multiple=True),
        ),
    )
    plans = plan_form_tables(conn, app="t", forms=[ticket, device])
    assert all(plan.problems == () for plan in plans)
    apply_form_table_plans(conn, plans)
    referred = {
        table: {fk["referred_table"] for fk in sa.inspect(conn).get_foreign_keys(table)}
        for table in ("t__ticket", "t__device", "t__device__tickets")
    }
    assert "t__device" in referred["t__ticket"]
    assert "t__ticket" in referred["t__device"]
    assert referred["t__device__tickets"] == {"t__device", "t__ticket"}
    assert all(p.is_empty for p in plan_form_tables(conn, app="t", forms=[ticket, device]))


def test_two_way_relations_are_stored_once(conn: sa.Connection) -> None:
    device = Form("device", (F("customer", "relation", form="customer"),))
    customer = replace(
        CUSTOMER,
        fields=CUSTOMER.fields
        + (F("devices", "relation", form="device", multiple=True, inverse="customer"),),
    )
    tag = Form("tag", (F("posts", "relation", form="post", multiple=True, inverse="tags"),))
    post = Form("post", (F("tags", "relation", form="tag", multiple=True, inverse="posts"),))
    apply_form_table_plans(
        conn, plan_form_tables(conn, app="t", forms=[device, customer, tag, post])
    )
    tables = set(sa.inspect(conn).get_table_names())
    assert "t__customer__devices" not in tables
    assert "customer" in _columns(conn, "t__device")
    assert ("t__post__tags" in tables) != ("t__tag__posts" in tables)


def test_form_indexes_on_system_columns(conn: sa.Connection) -> None:
    form = Form("job", (F("title", "text"),), indexes=(("created_at",), ("owner", "title")))
    _apply(conn, "t", form)
    indexed = {tuple(i["column_names"]) for i in sa.inspect(conn).get_indexes("t__job")}
    assert {("created_at",), ("owner_id", "title")} <= indexed
    assert plan_form_table(conn, app="t", form=form).is_empty
