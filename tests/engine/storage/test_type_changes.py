"""Type changes with data in place: every allowed conversion, every refusal with its report."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import DefinitionError
from engine.forms.spec import FormSpec
from engine.storage._type_changes import ALLOWED, REPORTED_IDS, allowed_changes
from engine.storage.form_tables import (
    ChangeType,
    apply_form_table_plan,
    describe,
    form_tables,
    plan_form_table,
)
from engine.storage.identity import UserStore

APP = "tc"
NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
OPTIONS = [{"key": "low", "label": "Low"}, {"key": "high", "label": "High"}]


def field(key: str, type_: str, **options: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "label": key.title(), **options}


def form(*fields: dict[str, Any], **extra: Any) -> FormSpec:
    return FormSpec.model_validate({"key": "item", "label": "Item", "fields": fields, **extra})


def publish(conn: sa.Connection, spec: FormSpec, previous: FormSpec | None = None) -> list[str]:
    plan = plan_form_table(conn, app=APP, form=spec, previous=previous)
    apply_form_table_plan(conn, plan)
    return describe(plan)


def insert(conn: sa.Connection, spec: FormSpec, key: str, values: list[Any]) -> list[int]:
    main = form_tables(app=APP, form=spec).main
    rows = [{key: value, "created_at": NOW, "updated_at": NOW} for value in values]
    return [conn.execute(main.insert().values(row)).inserted_primary_key[0] for row in rows]


def read(conn: sa.Connection, spec: FormSpec, key: str) -> list[Any]:
    main = form_tables(app=APP, form=spec).main
    return list(conn.scalars(sa.select(main.c[key]).order_by(main.c.id)))


def change(
    conn: sa.Connection, old: dict[str, Any], new: dict[str, Any], values: list[Any]
) -> tuple[list[Any], list[str]]:
    """Publish `old`, store `values`, publish `new`; the values read back and the plan lines."""
    before, after = form(old), form(new)
    publish(conn, before)
    insert(conn, before, old["key"], values)
    lines = publish(conn, after, previous=before)
    return read(conn, after, new["key"]), lines


SHANGHAI = {"timezone": "Asia/Shanghai"}

CONVERSIONS = [
    ("text-textarea", field("v", "text"), field("v", "textarea"), ["a", None], ["a", None]),
    ("textarea-text", field("v", "textarea"), field("v", "text", max_length=5), ["abc"], ["abc"]),
    ("rich-textarea", field("v", "rich_text"), field("v", "textarea"), ["<b>x</b>"], ["<b>x</b>"]),
    ("text-shorter", field("v", "text"), field("v", "text", max_length=3), ["abc"], ["abc"]),
    ("text-select", field("v", "text"), field("v", "select", options=OPTIONS), ["low"], ["low"]),
    ("select-text", field("v", "select", options=OPTIONS), field("v", "text"), ["high"], ["high"]),
    ("text-number", field("v", "text"), field("v", "number"), ["1.5", " 2 "], [1.5, 2.0]),
    (
        "text-decimals",
        field("v", "text"),
        field("v", "number", decimals=2),
        ["1.25", "-3"],
        [Decimal("1.25"), Decimal("-3.00")],
    ),
    ("text-money", field("v", "text"), field("v", "money"), ["9.99"], [Decimal("9.99")]),
    ("text-rating", field("v", "text"), field("v", "rating"), ["4"], [4]),
    ("text-date", field("v", "text"), field("v", "date"), ["2024-02-29"], [date(2024, 2, 29)]),
    (
        "text-datetime",
        field("v", "text"),
        field("v", "datetime", **SHANGHAI),
        ["2024-01-02T08:00:00", "2024-01-02T03:04:05+00:00"],
        [datetime(2024, 1, 2, 0, 0, tzinfo=UTC), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)],
    ),
    (
        "number-money",
        field("v", "number"),
        field("v", "money"),
        [1.5, 2.25, None],
        [Decimal("1.50"), Decimal("2.25"), None],
    ),
    ("number-percent", field("v", "number"), field("v", "percent"), [0.125], [Decimal("0.1250")]),
    ("money-number", field("v", "money"), field("v", "number"), [Decimal("1.50")], [1.5]),
    (
        "number-more-decimals",
        field("v", "number", decimals=1),
        field("v", "number", decimals=3),
        [Decimal("2.5")],
        [Decimal("2.500")],
    ),
    ("number-rating", field("v", "number"), field("v", "rating"), [3.0, 5.0], [3, 5]),
    ("rating-number", field("v", "rating"), field("v", "number"), [4], [4.0]),
    ("rating-lower-max", field("v", "rating"), field("v", "rating", max=3), [2], [2]),
    ("number-text", field("v", "number"), field("v", "text"), [1.5], ["1.5"]),
    ("money-text", field("v", "money"), field("v", "textarea"), [Decimal("3.10")], ["3.10"]),
    (
        "date-datetime",
        field("v", "date"),
        field("v", "datetime", **SHANGHAI),
        [date(2024, 1, 2)],
        [datetime(2024, 1, 1, 16, 0, tzinfo=UTC)],
    ),
    (
        "datetime-date",
        field("v", "datetime", **SHANGHAI),
        field("v", "date"),
        [datetime(2024, 1, 1, 16, 0, tzinfo=UTC)],
        [date(2024, 1, 2)],
    ),
    ("date-text", field("v", "date"), field("v", "text"), [date(2024, 1, 2)], ["2024-01-02"]),
    (
        "date-textarea",
        field("v", "date"),
        field("v", "textarea"),
        [date(2024, 1, 2)],
        ["2024-01-02"],
    ),
    ("text-email", field("v", "text"), field("v", "email"), ["a@b.cn"], ["a@b.cn"]),
    ("text-phone", field("v", "textarea"), field("v", "phone"), ["+86 10 1234"], ["+86 10 1234"]),
    ("text-url", field("v", "text"), field("v", "url"), ["https://x.cn"], ["https://x.cn"]),
    ("url-text", field("v", "url"), field("v", "text"), ["https://x.cn"], ["https://x.cn"]),
    ("text-percent", field("v", "text"), field("v", "percent"), ["12.5"], [Decimal("12.5000")]),
    (
        "formula-text",
        field("v", "formula", expr="1", result_type="text"),
        field("v", "textarea"),
        ["x"],
        ["x"],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "stored", "expected"),
    [case[1:] for case in CONVERSIONS],
    ids=[case[0] for case in CONVERSIONS],
)
def test_allowed_conversion_keeps_every_value(
    conn: sa.Connection, old: dict[str, Any], new: dict[str, Any], stored: list[Any], expected: Any
) -> None:
    values, lines = change(conn, old, new, stored)
    assert values == expected
    assert any(line.startswith("~ column tc__item.v") for line in lines)
    # the new type is in place: planning the same definition again changes nothing
    again = plan_form_table(conn, app=APP, form=form(new), previous=form(new))
    assert again.is_empty and again.problems == ()


def _columns(conn: sa.Connection) -> list[tuple[str, str]]:
    return [(c["name"], str(c["type"])) for c in sa.inspect(conn).get_columns("tc__item")]


def _user(conn: sa.Connection, name: str) -> int:
    return UserStore(conn).create(username=name, display_name=name).id


def test_single_user_becomes_multiple_and_back(conn: sa.Connection) -> None:
    ann, bob = _user(conn, "tc-ann"), _user(conn, "tc-bob")
    values, _ = change(
        conn, field("v", "user"), field("v", "user", multiple=True), [ann, bob, None]
    )
    assert values == [[ann], [bob], None]
    back = form(field("v", "user"))
    publish(conn, back, previous=form(field("v", "user", multiple=True)))
    assert read(conn, back, "v") == [ann, bob, None]
    foreign = sa.inspect(conn).get_foreign_keys("tc__item")
    assert any(fk["constrained_columns"] == ["v"] for fk in foreign)


def test_single_department_becomes_multiple(conn: sa.Connection) -> None:
    from engine.storage.identity import DepartmentStore

    sales = DepartmentStore(conn).create(key="tc-sales", name="Sales").id
    old, new = field("v", "department"), field("v", "department", multiple=True)
    values, _ = change(conn, old, new, [sales, None])
    assert values == [[sales], None]


def test_multiple_relation_cannot_become_single_again(conn: sa.Connection) -> None:
    customer = FormSpec.model_validate(
        {"key": "customer", "label": "C", "fields": [field("name", "text")]}
    )
    publish(conn, customer)
    single = form(field("who", "relation", form="customer"))
    multiple = form(field("who", "relation", form="customer", multiple=True))
    publish(conn, single)
    publish(conn, multiple, previous=single)
    plan = plan_form_table(conn, app=APP, form=single, previous=multiple)
    assert [(p.code, p.path) for p in plan.problems] == [
        ("storage.type-change-unsupported", "/fields/0/type")
    ]


def test_multiple_users_with_two_ids_cannot_become_single(conn: sa.Connection) -> None:
    ann, bob = _user(conn, "tc-ann"), _user(conn, "tc-bob")
    before = form(field("v", "user", multiple=True))
    publish(conn, before)
    ids = insert(conn, before, "v", [[ann], [ann, bob]])
    plan = plan_form_table(conn, app=APP, form=form(field("v", "user")), previous=before)
    assert [(p.code, p.path) for p in plan.problems] == [
        ("storage.value-out-of-range", "/fields/0")
    ]
    assert f"ids {ids[1]}" in plan.problems[0].message


def test_single_relation_becomes_multiple_with_rows_in_the_link_table(
    conn: sa.Connection,
) -> None:
    customer = FormSpec.model_validate(
        {"key": "customer", "label": "C", "fields": [field("name", "text")]}
    )
    publish(conn, customer)
    customers = insert(conn, customer, "name", ["a", "b"])
    before = form(field("who", "relation", form="customer"))
    after = form(field("who", "relation", form="customer", multiple=True))
    publish(conn, before)
    items = insert(conn, before, "who", [customers[0], customers[1], None])
    lines = publish(conn, after, previous=before)
    assert "~ column tc__item.who ids copied to link table tc__item__who" in lines
    link = form_tables(app=APP, form=after).children["who"]
    rows = conn.execute(sa.select(link.c.source_id, link.c.target_id).order_by(link.c.source_id))
    assert [tuple(row) for row in rows] == [(items[0], customers[0]), (items[1], customers[1])]
    kept = plan_form_table(conn, app=APP, form=after, previous=after)
    assert [(r.table, r.column) for r in kept.retired] == [("tc__item", "who")]


REFUSALS = [
    (field("v", "text"), field("v", "text", max_length=3), ["abcd", "ab"], "value-too-long"),
    (field("v", "text"), field("v", "select", options=OPTIONS), ["zzz"], "value-not-an-option"),
    (field("v", "text"), field("v", "number"), ["abc", "NaN"], "value-unparseable"),
    (field("v", "text"), field("v", "date"), ["02/01/2024"], "value-unparseable"),
    (field("v", "number"), field("v", "money"), [1.234], "value-out-of-range"),
    (field("v", "number"), field("v", "percent"), [123456.0], "value-out-of-range"),
    (field("v", "number"), field("v", "rating"), [7.0, 2.5], "value-out-of-range"),
    (
        field("v", "number", decimals=2),
        field("v", "number", decimals=1),
        [1.25],
        "value-out-of-range",
    ),
    (field("v", "number"), field("v", "text", max_length=2), [1.25], "value-too-long"),
    (field("v", "datetime"), field("v", "date"), [NOW], "value-out-of-range"),
]


@pytest.mark.parametrize(("old", "new", "stored", "code"), REFUSALS)
def test_refused_conversion_lists_the_records_and_changes_nothing(
    conn: sa.Connection, old: dict[str, Any], new: dict[str, Any], stored: list[Any], code: str
) -> None:
    before, after = form(old), form(new)
    publish(conn, before)
    ids = insert(conn, before, "v", stored)
    columns_before = _columns(conn)
    plan = plan_form_table(conn, app=APP, form=after, previous=before)
    assert [p.code for p in plan.problems] == [f"storage.{code}"]
    assert plan.problems[0].path in ("/fields/0/type", "/fields/0")
    assert f"ids {ids[0]}" in plan.problems[0].message
    with pytest.raises(DefinitionError):
        apply_form_table_plan(conn, plan)
    assert _columns(conn) == columns_before
    assert read(conn, before, "v") == stored


def test_report_shows_the_first_ids_and_the_total(conn: sa.Connection) -> None:
    before = form(field("v", "text"))
    publish(conn, before)
    ids = insert(conn, before, "v", ["bad"] * (REPORTED_IDS + 5))
    plan = plan_form_table(conn, app=APP, form=form(field("v", "number")), previous=before)
    (problem,) = plan.problems
    assert (problem.code, problem.path) == ("storage.value-unparseable", "/fields/0/type")
    assert f"{REPORTED_IDS + 5} records" in problem.message
    assert str(ids[REPORTED_IDS - 1]) in problem.message
    assert f"ids {ids[0]}," in problem.message and f"first {REPORTED_IDS} of" in problem.message


def test_lower_rating_maximum_is_checked_at_the_field(conn: sa.Connection) -> None:
    before = form(field("v", "rating", max=5))
    publish(conn, before)
    insert(conn, before, "v", [5])
    plan = plan_form_table(conn, app=APP, form=form(field("v", "rating", max=3)), previous=before)
    assert [(p.code, p.path) for p in plan.problems] == [
        ("storage.value-out-of-range", "/fields/0")
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (field("v", "boolean"), field("v", "number")),
        (field("v", "multiselect", options=OPTIONS), field("v", "image")),
        (field("v", "time"), field("v", "date")),
        (field("v", "user", multiple=True), field("v", "department", multiple=True)),
    ],
)
def test_change_outside_the_allow_list_is_refused(
    conn: sa.Connection, old: dict[str, Any], new: dict[str, Any]
) -> None:
    before = form(old)
    publish(conn, before)
    plan = plan_form_table(conn, app=APP, form=form(new), previous=before)
    assert [(p.code, p.path) for p in plan.problems] == [
        ("storage.type-change-unsupported", "/fields/0/type")
    ]


def test_new_unique_field_reports_duplicate_groups(conn: sa.Connection) -> None:
    before = form(field("v", "text"), field("w", "text"))
    publish(conn, before)
    main = form_tables(app=APP, form=before).main
    rows = [("a", "x"), ("a", "x"), ("b", "y"), ("c", "x")]
    for v, w in rows:
        conn.execute(main.insert().values(v=v, w=w, created_at=NOW, updated_at=NOW))
    conn.execute(main.insert().values(v="b", w="y", created_at=NOW, updated_at=NOW, deleted_at=NOW))
    single = form(field("v", "text", unique=True), field("w", "text"))
    plan = plan_form_table(conn, app=APP, form=single, previous=before)
    assert [(p.code, p.path) for p in plan.problems] == [
        ("storage.duplicate-values", "/fields/0/unique")
    ]
    assert "ids 1, 2" in plan.problems[0].message or "'a'" in plan.problems[0].message
    pair = form(field("v", "text"), field("w", "text"), unique=[["w", "v"]])
    plan = plan_form_table(conn, app=APP, form=pair, previous=before)
    assert [(p.code, p.path) for p in plan.problems] == [("storage.duplicate-values", "/unique/0")]
    fine = form(field("v", "text"), field("w", "text"), unique=[["v", "w"]], indexes=[["w"]])
    conn.execute(sa.delete(main).where(main.c.v == "a"))
    lines = publish(conn, fine, previous=before)
    assert any(line.startswith("+ unique index uq_tc__item_v_w") for line in lines)
    assert any(line.startswith("+ index ix_tc__item_w") for line in lines)


def test_converted_column_keeps_its_unique_index(conn: sa.Connection) -> None:
    before = form(field("v", "text", unique=True))
    publish(conn, before)
    insert(conn, before, "v", ["1", "2"])
    after = form(field("v", "number", unique=True))
    publish(conn, after, previous=before)
    assert read(conn, after, "v") == [1.0, 2.0]
    indexes = {i["name"] for i in sa.inspect(conn).get_indexes("tc__item")}
    assert "uq_tc__item_v" in indexes


def test_subform_field_changes_type(conn: sa.Connection) -> None:
    before = form(field("lines", "subform", fields=[field("qty", "text")]))
    after = form(field("lines", "subform", fields=[field("qty", "number")]))
    publish(conn, before)
    main = form_tables(app=APP, form=before).main
    inserted = conn.execute(main.insert().values(created_at=NOW, updated_at=NOW))
    parent_id = inserted.inserted_primary_key[0]
    child = form_tables(app=APP, form=before).children["lines"]
    conn.execute(child.insert().values(parent_id=parent_id, position=0, qty="3"))
    publish(conn, after, previous=before)
    child = form_tables(app=APP, form=after).children["lines"]
    assert list(conn.scalars(sa.select(child.c.qty))) == [3.0]


def test_retired_field_is_kept_and_comes_back(conn: sa.Connection) -> None:
    full = form(field("name", "text"), field("note", "text"))
    publish(conn, full)
    insert(conn, full, "note", ["keep me"])
    removed = form(field("name", "text"))
    lines = publish(conn, removed, previous=full)
    assert "~ column tc__item.note retired (kept)" in lines
    marked = form(field("name", "text"), field("note", "text", retired=True))
    assert publish(conn, marked, previous=removed) == []
    # re-added with another compatible type: the data comes back, converted
    back = form(field("name", "text"), field("note", "textarea"))
    publish(conn, back, previous=removed)
    assert read(conn, back, "note") == ["keep me"]


def test_renaming_a_label_never_touches_the_column(conn: sa.Connection) -> None:
    before = form(field("v", "text"))
    publish(conn, before)
    insert(conn, before, "v", ["x"])
    columns = _columns(conn)
    renamed = form({**field("v", "text"), "label": {"en": "Renamed", "zh": "改名"}})
    plan = plan_form_table(conn, app=APP, form=renamed, previous=before)
    assert plan.is_empty and plan.problems == () and describe(plan) == []
    assert _columns(conn) == columns


def test_failed_conversion_rolls_back_with_the_transaction(conn: sa.Connection) -> None:
    before = form(field("v", "text"))
    publish(conn, before)
    insert(conn, before, "v", ["1"])
    with pytest.raises(RuntimeError), conn.begin_nested():
        publish(conn, form(field("v", "number")), previous=before)
        raise RuntimeError("publishing the definition failed afterwards")
    assert read(conn, before, "v") == ["1"]
    assert "__new" not in str(sa.inspect(conn).get_columns("tc__item"))


def test_the_allow_list_is_documented_and_plans_say_what_changes(conn: sa.Connection) -> None:
    assert ("string", "select") in allowed_changes() and ("boolean", "number") not in ALLOWED
    before = form(field("v", "text"))
    publish(conn, before)
    plan = plan_form_table(conn, app=APP, form=form(field("v", "number")), previous=before)
    (step,) = plan.steps
    assert isinstance(step, ChangeType) and step.alters
