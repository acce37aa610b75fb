"""validate_submission: merge, defaults, visibility, required, rules, formulas and subforms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import SubmissionError
from engine.forms import FormSpec, compile_form
from engine.forms.compiler import CompiledForm
from engine.forms.validation import EvalContext, unique_fields, validate_submission

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
CONTEXT = EvalContext(now=NOW, actor=7, departments=(3,), timezone="Asia/Shanghai")

ORDER = {
    "key": "order",
    "label": "Order",
    "fields": [
        {"type": "text", "key": "title", "required": True, "max_length": 50, "unique": True},
        {
            "type": "select",
            "key": "kind",
            "default": "normal",
            "options": [
                {"key": "normal", "label": "Normal"},
                {"key": "rush", "label": "Rush"},
                {"key": "old", "label": "Old", "retired": True},
            ],
        },
        {"type": "text", "key": "rush_reason", "visible_if": 'kind = "rush"', "required": True},
        {"type": "date", "key": "due", "required_if": 'kind = "rush"'},
        {"type": "number", "key": "discount", "default": 0, "min": 0, "max": 100},
        {"type": "user", "key": "owner_user", "default_expr": "$user"},
        {"type": "date", "key": "ordered_on", "default_expr": "$today"},
        {
            "type": "number",
            "key": "budget",
            "validations": [
                {
                    "expr": "budget >= total",
                    "message": {"en": "Over budget", "zh": "超预算"},
                    "code": "over_budget",
                },
                {"expr": "budget < 1000000", "message": "Too large"},
            ],
        },
        {
            "type": "subform",
            "key": "items",
            "min_rows": 1,
            "fields": [
                {"type": "text", "key": "sku", "required": True},
                {"type": "number", "key": "qty", "min": 1, "default": 1},
                {"type": "money", "key": "price"},
                {"type": "boolean", "key": "gift", "default": False},
                {"type": "formula", "key": "amount", "expr": "qty * price", "result_type": "money"},
            ],
        },
        {
            "type": "rollup",
            "key": "total",
            "relation": "items",
            "aggregate": "sum",
            "field": "amount",
            "filter": "NOT(gift)",
        },
        {"type": "rollup", "key": "lines", "relation": "items", "aggregate": "count"},
        {"type": "formula", "key": "average", "expr": "total / lines", "result_type": "money"},
        {"type": "number", "key": "zero"},
        {"type": "formula", "key": "ratio", "expr": "total / zero", "result_type": "number"},
        {"type": "autonumber", "key": "number", "pattern": "O-{####}"},
        {"type": "section", "key": "more"},
    ],
}


@pytest.fixture(scope="module")
def order() -> CompiledForm:
    return compile_form(FormSpec.model_validate(ORDER))


def good(**extra: Any) -> dict[str, Any]:
    return {
        "title": "First",
        "items": [{"sku": "A", "qty": 2, "price": "10.5"}, {"sku": "B", "price": 4, "gift": True}],
        **extra,
    }


def errors_of(
    form: CompiledForm, data: Any, current: Any = None, **kw: Any
) -> list[tuple[str, str]]:
    with pytest.raises(SubmissionError) as info:
        validate_submission(form, data, current=current, context=CONTEXT, **kw)
    return [(e.loc, e.code) for e in info.value.errors]


def test_create_applies_defaults_and_computes(order: CompiledForm) -> None:
    record = validate_submission(order, good(), current=None, context=CONTEXT)
    assert record["kind"] == "normal"
    assert record["discount"] == Decimal(0)
    assert record["owner_user"] == 7
    assert record["ordered_on"] == dt.date(2026, 11, 23)  # $today in Asia/Shanghai
    assert record["items"][0] == {
        "sku": "A",
        "qty": Decimal(2),
        "price": Decimal("10.50"),
        "gift": False,
        "amount": Decimal("21.00"),
    }
    assert record["items"][1]["qty"] == Decimal(1)  # row default
    assert record["average"] == Decimal("10.50")  # total 21 (gift filtered) / 2 lines
    assert record["ratio"] is None  # division by zero is blank
    assert record["number"] is None  # allocated by storage
    assert "total" not in record and "more" not in record  # rollups and layout are not stored
    assert record["rush_reason"] is None


def test_every_error_at_once(order: CompiledForm) -> None:
    data = {
        "title": "x" * 51,
        "bogus": 1,
        "discount": 101,
        "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 0}],
        "total": 5,
    }
    assert sorted(errors_of(order, data)) == sorted(
        [
            ("bogus", "submission.unknown-field"),
            ("title", "submission.too-long"),
            ("discount", "submission.out-of-range"),
            ("items/1/qty", "submission.out-of-range"),
            ("total", "submission.read-only"),
        ]
    )


def test_required_and_required_if(order: CompiledForm) -> None:
    assert errors_of(order, {"items": [{"qty": 1}]}) == [
        ("title", "submission.required"),
        ("items/0/sku", "submission.required"),
    ]
    rush = good(kind="rush", rush_reason="VIP")
    assert errors_of(order, rush) == [("due", "submission.required")]
    assert validate_submission(order, {**rush, "due": "2026-12-01"}, current=None, context=CONTEXT)[
        "due"
    ] == dt.date(2026, 12, 1)


def test_hidden_fields_are_not_required_nor_accepted(order: CompiledForm) -> None:
    assert errors_of(order, good(rush_reason="why")) == [("rush_reason", "submission.hidden-field")]
    record = validate_submission(order, good(rush_reason=None), current=None, context=CONTEXT)
    assert record["rush_reason"] is None


def test_hidden_field_keeps_stored_value_on_update(order: CompiledForm) -> None:
    stored = validate_submission(
        order, good(kind="rush", rush_reason="VIP", due="2026-12-01"), current=None, context=CONTEXT
    )
    updated = validate_submission(order, {"kind": "normal"}, current=stored, context=CONTEXT)
    assert updated["rush_reason"] == "VIP"
    assert updated["kind"] == "normal"


def test_partial_update_merges_over_current(order: CompiledForm) -> None:
    stored = validate_submission(order, good(), current=None, context=CONTEXT)
    stored = {**stored, "id": 12, "number": "O-0001"}
    updated = validate_submission(order, {"title": "Second"}, current=stored, context=CONTEXT)
    assert updated["title"] == "Second"
    assert updated["items"] == stored["items"]
    assert updated["number"] == "O-0001"


def test_computed_values_sent_back_unchanged_are_accepted(order: CompiledForm) -> None:
    stored = {**validate_submission(order, good(), current=None, context=CONTEXT), "number": "O-7"}
    data = {"title": "T", "number": "O-7", "average": 10.5}
    assert validate_submission(order, data, current=stored, context=CONTEXT)["title"] == "T"
    assert errors_of(order, {"number": "O-8"}, stored) == [("number", "submission.read-only")]


def test_locked_fields(order: CompiledForm) -> None:
    stored = validate_submission(order, good(), current=None, context=CONTEXT)
    same = validate_submission(
        order, {"discount": 0}, current=stored, context=CONTEXT, locked={"discount"}
    )
    assert same["discount"] == 0
    assert errors_of(order, {"discount": 5}, stored, locked={"discount"}) == [
        ("discount", "submission.read-only")
    ]


def test_custom_validations(order: CompiledForm) -> None:
    assert errors_of(order, good(budget=20)) == [("budget", "validation.over_budget")]
    assert errors_of(order, good(budget=2_000_000)) == [("budget", "submission.validation")]
    # blank budget: `budget >= total` is blank, which passes (as a SQL CHECK does)
    assert validate_submission(order, good(), current=None, context=CONTEXT)["budget"] is None


def test_rule_message_in_the_context_language(order: CompiledForm) -> None:
    chinese = EvalContext(now=NOW, language="zh")
    with pytest.raises(SubmissionError) as info:
        validate_submission(order, good(budget=1), current=None, context=chinese)
    assert info.value.errors[0].message == "超预算"


def test_subform_min_rows_and_required(order: CompiledForm) -> None:
    assert errors_of(order, {"title": "x"}) == [("items", "submission.too-few")]
    assert errors_of(order, {"title": "x", "items": []}) == [("items", "submission.too-few")]
    assert errors_of(order, {"title": "x", "items": "no"}) == [("items", "submission.wrong-type")]


def test_retired_option(order: CompiledForm) -> None:
    assert errors_of(order, good(kind="old")) == [("kind", "submission.retired-option")]
    stored = {**validate_submission(order, good(), current=None, context=CONTEXT), "kind": "old"}
    assert (
        validate_submission(order, {"kind": "old"}, current=stored, context=CONTEXT)["kind"]
        == "old"
    )


def test_not_a_mapping(order: CompiledForm) -> None:
    assert errors_of(order, ["title"]) == [("", "submission.wrong-type")]


@pytest.mark.parametrize(
    "text", ["'; DROP TABLE order; --", "<img src=x onerror=alert(1)>", "1' OR '1'='1"]
)
def test_injection_strings_verbatim(order: CompiledForm, text: str) -> None:
    record = validate_submission(order, good(title=text[:50]), current=None, context=CONTEXT)
    assert record["title"] == text[:50]


def test_unique_fields(order: CompiledForm) -> None:
    assert unique_fields(order) == (("title",),)


def test_plan_is_reused(order: CompiledForm) -> None:
    from engine.forms._validation_plan import plan_for

    assert plan_for(order) is plan_for(order)


def test_stored_floats_compare_as_decimals(order: CompiledForm) -> None:
    stored = validate_submission(order, good(), current=None, context=CONTEXT)
    stored = {**stored, "discount": 0.1}  # a float column reads back as float
    record = validate_submission(
        order, {"discount": "0.1"}, current=stored, context=CONTEXT, locked={"discount"}
    )
    assert record["discount"] == Decimal("0.1")


ROWS = {
    "key": "visit",
    "label": "Visit",
    "fields": [
        {
            "type": "select",
            "key": "mode",
            "options": [
                {"key": "onsite", "label": "On site"},
                {"key": "remote", "label": "Remote"},
            ],
        },
        {"type": "text", "key": "old", "retired": True},
        {"type": "datetime", "key": "start"},
        {
            "type": "subform",
            "key": "parts",
            "required": True,
            "fields": [
                {"type": "text", "key": "sku", "required_if": 'mode = "onsite"'},
                {"type": "number", "key": "qty", "default_expr": "1 + 1"},
                {"type": "text", "key": "serial", "visible_if": "qty > 1"},
                {
                    "type": "number",
                    "key": "cost",
                    "validations": [{"expr": "cost >= 0", "message": "No negative cost"}],
                },
            ],
        },
        {"type": "rollup", "key": "n", "relation": "parts", "aggregate": "count", "field": "sku"},
        {
            "type": "rollup",
            "key": "avg_cost",
            "relation": "parts",
            "aggregate": "avg",
            "field": "cost",
        },
        {
            "type": "rollup",
            "key": "max_cost",
            "relation": "parts",
            "aggregate": "max",
            "field": "cost",
            "filter": "qty > 1",
        },
        {
            "type": "formula",
            "key": "spread",
            "expr": "max_cost - avg_cost",
            "result_type": "number",
        },
    ],
}


@pytest.fixture(scope="module")
def visit() -> CompiledForm:
    return compile_form(FormSpec.model_validate(ROWS))


def test_subform_rows_rules_and_rollups(visit: CompiledForm) -> None:
    data = {
        "mode": "remote",
        "start": "2026-11-23 09:00",
        "parts": [{"sku": "A", "qty": 1, "cost": 4}, {"qty": 3, "serial": "S1", "cost": 10}],
    }
    record = validate_submission(visit, data, current=None, context=CONTEXT)
    assert record["start"] == dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Asia/Shanghai
    assert record["spread"] == Decimal(3)  # max over qty > 1 (10) minus avg (7)
    assert record["parts"][1] == {
        "sku": None,
        "qty": Decimal(3),
        "serial": "S1",
        "cost": Decimal(10),
    }


def test_subform_row_errors_are_located(visit: CompiledForm) -> None:
    data = {
        "mode": "onsite",
        "parts": [{"sku": "A", "qty": 2}, {"qty": 1, "serial": "S2", "cost": -1}],
    }
    assert sorted(errors_of(visit, data)) == [
        ("parts/1/cost", "submission.validation"),
        ("parts/1/serial", "submission.hidden-field"),
        ("parts/1/sku", "submission.required"),
    ]


def test_row_defaults_and_required_subform(visit: CompiledForm) -> None:
    record = validate_submission(visit, {"parts": [{"sku": "A"}]}, current=None, context=CONTEXT)
    assert record["parts"][0]["qty"] == Decimal(2)  # default_expr in a new row
    assert errors_of(visit, {"parts": []}) == [("parts", "submission.required")]


def test_retired_field_keeps_its_value(visit: CompiledForm) -> None:
    stored = validate_submission(visit, {"parts": [{"sku": "A"}]}, current=None, context=CONTEXT)
    stored = {**stored, "old": "kept"}
    assert validate_submission(visit, {"old": "kept"}, current=stored, context=CONTEXT)["old"] == (
        "kept"
    )
    assert errors_of(visit, {"old": "new"}, stored) == [("old", "submission.retired-field")]
    assert errors_of(visit, {"old": "x", "parts": [{"sku": "A"}]}) == [
        ("old", "submission.retired-field")
    ]


def test_one_megabyte_string_is_refused(order: CompiledForm) -> None:
    assert errors_of(order, good(title="x" * 1_048_576)) == [("title", "submission.too-long")]


def test_lenient_rows_from_a_csv(order: CompiledForm) -> None:
    row = {
        "title": "From CSV",
        "kind": "Normal",
        "budget": "1,500",
        "owner_user": "12",
        "items": [{"sku": "A", "qty": "2", "price": "3", "gift": "否"}],
    }
    record = validate_submission(order, row, current=None, context=CONTEXT, lenient=True)
    assert (record["kind"], record["budget"], record["owner_user"]) == ("normal", 1500, 12)
    assert record["items"][0]["gift"] is False
    assert errors_of(order, row) == [
        ("kind", "submission.unknown-option"),
        ("budget", "submission.invalid-number"),
        ("owner_user", "submission.wrong-type"),
        ("items/0/gift", "submission.wrong-type"),
    ]


def test_a_record_read_can_be_sent_back_whole(order: CompiledForm) -> None:
    from engine.forms.values import record_to_json

    stored = {**validate_submission(order, good(), current=None, context=CONTEXT), "id": 3}
    read = record_to_json(order.fields, {**stored, "total": Decimal(21), "lines": Decimal(2)})
    read.pop("id")
    again = validate_submission(order, read, current=stored, context=CONTEXT)
    assert again == {key: value for key, value in stored.items() if key != "id"}
    # a computed value matching the new input is accepted too
    changed = {**read, "items": [{"sku": "A", "qty": 1, "price": 5}], "total": 5, "lines": 1}
    assert validate_submission(order, changed, current=stored, context=CONTEXT)["average"] == 5
    assert errors_of(order, {**read, "total": 99}, stored) == [("total", "submission.read-only")]


def test_hidden_subform_keeps_its_rows_and_inputs_are_not_mutated() -> None:
    spec = {
        "key": "job",
        "label": "Job",
        "fields": [
            {"type": "boolean", "key": "itemised"},
            {
                "type": "subform",
                "key": "lines",
                "visible_if": "itemised",
                "fields": [
                    {"type": "number", "key": "qty"},
                    {"type": "text", "key": "note", "visible_if": "qty > 5"},
                    {"type": "formula", "key": "twice", "expr": "qty * 2", "result_type": "number"},
                ],
            },
        ],
    }
    form = compile_form(FormSpec.model_validate(spec))
    rows = [{"qty": 1, "note": "kept from an older rule"}]
    stored = {"itemised": True, "lines": rows}
    record = validate_submission(form, {"itemised": False}, current=stored, context=CONTEXT)
    assert record["lines"] == [{"qty": 1, "note": "kept from an older rule", "twice": 2}]
    assert rows == [{"qty": 1, "note": "kept from an older rule"}]  # the caller's dicts
    assert errors_of(form, {"itemised": True, "lines": [{"qty": 1, "note": "x"}]}) == [
        ("lines/0/note", "submission.hidden-field")
    ]
