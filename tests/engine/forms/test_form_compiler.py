"""Semantic checks of the form compiler: every problem collected, each with code and path."""

from __future__ import annotations

from typing import Any

import pytest

from engine.forms import FormSpec, OptionSetSpec, compile_form

NUMBER = {"type": "number", "key": "qty"}
CUSTOMER = FormSpec.model_validate(
    {
        "key": "customer",
        "label": "Customer",
        "fields": [
            {"type": "text", "key": "name"},
            {"type": "select", "key": "tier", "options": [{"key": "vip", "label": "VIP"}]},
            {"type": "relation", "key": "orders", "form": "order", "multiple": True,
             "inverse": "customer"},
        ],
    }
)  # fmt: skip


def make_form(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": "sample", "label": "Sample", "fields": list(fields), **extra}


def _order(*fields: dict[str, Any], **extra: Any) -> FormSpec:
    data = make_form(*fields, **extra)
    data["key"] = "order"
    return FormSpec.model_validate(data)


def test_valid_form_compiles() -> None:
    spec = _order(
        NUMBER,
        {"type": "money", "key": "price"},
        {"type": "formula", "key": "total", "expr": "qty * price", "result_type": "money"},
        {"type": "formula", "key": "label", "expr": 'IF(total > 100, "big", "small")',
         "result_type": "text"},
        {"type": "relation", "key": "customer", "form": "customer", "inverse": "orders"},
        {"type": "lookup", "key": "tier", "relation": "customer", "field": "tier"},
        {"type": "text", "key": "note", "visible_if": 'tier = "vip"'},
    )  # fmt: skip
    compiled = compile_form(spec, forms={"customer": CUSTOMER, "order": spec})
    assert compiled.formula_order == ("total", "label")
    assert set(compiled.fields) >= {"qty", "total", "customer"}
    assert "/fields/2/expr" in compiled.expressions
    assert compiled.catalog["customer.tier"].kind == "text"
    assert compiled.catalog["tier"].kind == "text"


def test_duplicate_keys_top_level_and_in_subform(semantic_problems) -> None:
    lines = {"type": "subform", "key": "lines", "fields": [NUMBER, NUMBER]}
    data = make_form(NUMBER, NUMBER, lines)
    assert semantic_problems(data) == [
        ("form.duplicate-key", "/fields/1/key"),
        ("form.duplicate-key", "/fields/2/fields/1/key"),
    ]


def test_reserved_key(semantic_problems) -> None:
    assert semantic_problems(make_form({"type": "text", "key": "created_at"})) == [
        ("form.reserved-key", "/fields/0/key")
    ]


def test_expression_keywords_are_reserved_keys(semantic_problems) -> None:
    data = make_form({"type": "text", "key": "in"}, {"type": "boolean", "key": "true"})
    assert semantic_problems(data) == [
        ("form.reserved-key", "/fields/0/key"),
        ("form.reserved-key", "/fields/1/key"),
    ]


def test_unknown_fields_in_layout_unique_indexes_title(semantic_problems) -> None:
    data = make_form(
        NUMBER,
        title_field="nope",
        unique=[["qty", "missing"]],
        indexes=[["ghost"]],
        layout={"tabs": [{"key": "t", "label": "T", "sections": [{"key": "s",
                "fields": ["qty", {"field": "phantom"}]}]}]},
    )  # fmt: skip
    assert semantic_problems(data) == [
        ("form.unknown-field", "/title_field"),
        ("form.unknown-field", "/indexes/0/0"),
        ("form.unknown-field", "/unique/0/1"),
        ("form.unknown-field", "/layout/tabs/0/sections/0/fields/1"),
    ]


def test_lookup_and_rollup_references(semantic_problems) -> None:
    data = make_form(
        NUMBER,
        {"type": "lookup", "key": "a", "relation": "missing", "field": "x"},
        {"type": "lookup", "key": "b", "relation": "qty", "field": "x"},
        {"type": "rollup", "key": "c", "relation": "qty", "aggregate": "count"},
        {"type": "subform", "key": "lines", "fields": [NUMBER]},
        {"type": "rollup", "key": "d", "relation": "lines", "aggregate": "sum", "field": "nope"},
        {"type": "rollup", "key": "e", "relation": "lines", "aggregate": "sum", "field": "qty",
         "filter": "qty > 0"},
    )  # fmt: skip
    assert semantic_problems(data) == [
        ("form.unknown-field", "/fields/1/relation"),
        ("form.not-a-relation", "/fields/2/relation"),
        ("form.not-a-relation", "/fields/3/relation"),
        ("form.unknown-field", "/fields/5/field"),
    ]


def test_relation_to_unknown_form_only_when_forms_given(semantic_problems) -> None:
    data = make_form({"type": "relation", "key": "r", "form": "nowhere"})
    compile_form(FormSpec.model_validate(data))
    assert semantic_problems(data, forms={}) == [("form.unknown-form", "/fields/0/form")]


def test_relation_to_other_app_is_not_checked() -> None:
    data = make_form({"type": "relation", "key": "r", "form": "crm.account"})
    compile_form(FormSpec.model_validate(data), forms={})


def test_lookup_field_checked_in_target(semantic_problems) -> None:
    data = make_form(
        {"type": "relation", "key": "customer", "form": "customer"},
        {"type": "lookup", "key": "t", "relation": "customer", "field": "colour"},
    )
    assert semantic_problems(data, forms={"customer": CUSTOMER}) == [
        ("form.unknown-field", "/fields/1/field")
    ]


def test_bad_inverse(semantic_problems) -> None:
    data = make_form({"type": "relation", "key": "c", "form": "customer", "inverse": "name"})
    assert semantic_problems(data, forms={"customer": CUSTOMER}) == [
        ("form.bad-inverse", "/fields/0/inverse")
    ]


def test_every_expression_is_checked(semantic_problems) -> None:
    data = make_form(
        NUMBER,
        {"type": "text", "key": "a", "required_if": "qty >", "visible_if": "nope = 1"},
        {"type": "number", "key": "b", "default_expr": '"text"'},
        {"type": "text", "key": "c", "validations": [{"expr": "qty", "message": "m"}]},
        {"type": "formula", "key": "d", "expr": "UNKNOWNFN(1)", "result_type": "number"},
        {"type": "subform", "key": "lines", "fields": [
            {"type": "number", "key": "n", "visible_if": "qty > n AND missing"}]},
    )  # fmt: skip
    assert semantic_problems(data) == [
        ("form.bad-expression", "/fields/1/required_if"),
        ("form.bad-expression", "/fields/1/visible_if"),
        ("form.expression-type", "/fields/2/default_expr"),
        ("form.expression-type", "/fields/3/validations/0/expr"),
        ("form.bad-expression", "/fields/4/expr"),
        ("form.bad-expression", "/fields/5/fields/0/visible_if"),
    ]


def test_formula_result_type(semantic_problems) -> None:
    data = make_form(NUMBER, {"type": "formula", "key": "f", "expr": "qty", "result_type": "date"})
    assert semantic_problems(data) == [("form.expression-type", "/fields/1/expr")]


def test_formula_cycle(semantic_problems) -> None:
    data = make_form(
        {"type": "formula", "key": "a", "expr": "b + 1", "result_type": "number"},
        {"type": "formula", "key": "b", "expr": "c + 1", "result_type": "number"},
        {"type": "formula", "key": "c", "expr": "a + 1", "result_type": "number"},
        {"type": "formula", "key": "d", "expr": "1", "result_type": "number"},
    )
    assert sorted(semantic_problems(data)) == [
        ("form.formula-cycle", "/fields/0/expr"),
        ("form.formula-cycle", "/fields/1/expr"),
        ("form.formula-cycle", "/fields/2/expr"),
    ]


def test_self_referencing_formula(semantic_problems) -> None:
    data = make_form({"type": "formula", "key": "a", "expr": "a + 1", "result_type": "number"})
    assert semantic_problems(data) == [("form.formula-cycle", "/fields/0/expr")]


def test_unknown_option_set(semantic_problems) -> None:
    shared = {
        "tier": OptionSetSpec(key="tier", label="Tier", options=({"key": "a", "label": "A"},))
    }
    data = make_form(
        {"type": "select", "key": "a", "option_set": "tier"},
        {"type": "select", "key": "b", "option_set": "missing"},
        {"type": "select", "key": "c", "option_set": "local"},
        option_sets=[{"key": "local", "label": "L", "options": [{"key": "x", "label": "X"}]}],
    )
    assert semantic_problems(data, option_sets=shared) == [
        ("form.unknown-option-set", "/fields/1/option_set")
    ]


@pytest.mark.parametrize("key", ["title_field", "unique"])
def test_constraints_need_stored_fields(semantic_problems, key: str) -> None:
    value: Any = "l" if key == "title_field" else [["l"]]
    data = make_form(
        {"type": "subform", "key": "s", "fields": [NUMBER]},
        {"type": "rollup", "key": "l", "relation": "s", "aggregate": "count"},
        **{key: value},
    )
    path = "/title_field" if key == "title_field" else "/unique/0/0"
    assert semantic_problems(data) == [("form.not-stored", path)]


def test_subform_formulas_ordered_and_cycles_found(semantic_problems) -> None:
    lines = {"type": "subform", "key": "lines", "fields": [
        NUMBER,
        {"type": "formula", "key": "b", "expr": "a * 2", "result_type": "number"},
        {"type": "formula", "key": "a", "expr": "qty + 1", "result_type": "number"},
    ]}  # fmt: skip
    compiled = compile_form(FormSpec.model_validate(make_form(lines)))
    assert compiled.subform_formula_order["lines"] == ("a", "b")
    looped = {"type": "subform", "key": "lines", "fields": [
        {"type": "formula", "key": "a", "expr": "b", "result_type": "number"},
        {"type": "formula", "key": "b", "expr": "a", "result_type": "number"},
    ]}  # fmt: skip
    assert sorted(semantic_problems(make_form(looped))) == [
        ("form.formula-cycle", "/fields/0/fields/0/expr"),
        ("form.formula-cycle", "/fields/0/fields/1/expr"),
    ]


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ({"type": "number", "key": "n", "default": "ten"}, "/fields/0/default"),
        ({"type": "number", "key": "n", "default": 11, "max": 10}, "/fields/0/default"),
        ({"type": "boolean", "key": "b", "default": "yes"}, "/fields/0/default"),
        ({"type": "date", "key": "d", "default": "2025-13-01"}, "/fields/0/default"),
        ({"type": "select", "key": "s", "default": "zz",
          "options": [{"key": "a", "label": "A"}]}, "/fields/0/default"),
        ({"type": "multiselect", "key": "m", "default": ["a", "zz"],
          "options": [{"key": "a", "label": "A"}]}, "/fields/0/default"),
    ],
)  # fmt: skip
def test_bad_default(semantic_problems, field: dict[str, Any], path: str) -> None:
    assert semantic_problems(make_form(field)) == [("form.bad-default", path)]


def test_layout_section_condition_checked(semantic_problems) -> None:
    layout = {"sections": [{"key": "s", "visible_if": "ghost = 1", "fields": ["qty"]}]}
    assert semantic_problems(make_form(NUMBER, layout=layout)) == [
        ("form.bad-expression", "/layout/sections/0/visible_if")
    ]


def test_relation_display_field(semantic_problems) -> None:
    data = make_form({"type": "relation", "key": "c", "form": "customer", "display_field": "x"})
    assert semantic_problems(data, forms={"customer": CUSTOMER}) == [
        ("form.unknown-field", "/fields/0/display_field")
    ]


def test_layout_keys_unique(semantic_problems) -> None:
    section = {"key": "s", "fields": []}
    layout = {"tabs": [{"key": "t", "label": "T", "sections": [section]},
                       {"key": "t", "label": "U", "sections": [section]}]}  # fmt: skip
    assert semantic_problems(make_form(NUMBER, layout=layout)) == [
        ("form.duplicate-key", "/layout/tabs/1/key"),
        ("form.duplicate-key", "/layout/tabs/1/sections/0/key"),
    ]


def test_indexes_may_cover_system_columns_but_unique_may_not(semantic_problems) -> None:
    data = make_form(NUMBER, indexes=[["created_at"], ["owner", "qty"]], unique=[["created_at"]])
    assert semantic_problems(data) == [("form.unknown-field", "/unique/0/0")]
