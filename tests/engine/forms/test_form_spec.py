"""Shape checks of form definitions: every field type, per-type options, errors with paths."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import TypeAdapter

from engine.forms import FieldSpec, FormSpec
from engine.forms.fields import FIELD_CLASSES, check_autonumber_pattern

FIELD_TYPES = [
    "text", "textarea", "rich_text", "number", "money", "percent", "date", "datetime", "time",
    "date_range", "select", "multiselect", "cascade", "boolean", "rating", "email", "phone",
    "url", "address", "location", "image", "attachment", "signature", "user", "department",
    "relation", "lookup", "rollup", "formula", "autonumber", "subform", "section", "divider",
    "description",
]  # fmt: skip

MINIMAL: dict[str, dict[str, typing.Any]] = {
    "select": {"options": [{"key": "a", "label": "A"}]},
    "multiselect": {"option_set": "colours"},
    "cascade": {
        "levels": [{"key": "l1", "label": "L1"}, {"key": "l2", "label": "L2"}],
        "options": [{"key": "a", "label": "A"}, {"key": "a1", "label": "A1", "parent": "a"}],
    },
    "relation": {"form": "other"},
    "lookup": {"relation": "r", "field": "x"},
    "rollup": {"relation": "r", "aggregate": "count"},
    "formula": {"expr": "1 + 1", "result_type": "number"},
    "autonumber": {"pattern": "SR-{YYYYMMDD}-{####}", "reset": "daily"},
    "subform": {"fields": [{"type": "text", "key": "line"}]},
    "description": {"content": {"en": "Read me", "zh": "说明"}},
}


def make_form(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": "sample", "label": "Sample", "fields": list(fields), **extra}


def test_union_covers_every_product_type() -> None:
    assert sorted(FIELD_CLASSES) == sorted(FIELD_TYPES)


@pytest.mark.parametrize("field_type", FIELD_TYPES)
def test_each_type_validates_and_round_trips(field_type: str) -> None:
    data = {"type": field_type, "key": "f", "label": {"en": "F", "zh": "字段"}}
    data.update(MINIMAL.get(field_type, {}))
    field = TypeAdapter(FieldSpec).validate_python(data)
    assert field.type == field_type
    dumped = TypeAdapter(FieldSpec).dump_python(field, mode="json", exclude_defaults=True)
    assert TypeAdapter(FieldSpec).validate_python(dumped) == field


def test_unknown_type(shape_problems) -> None:
    data = make_form({"type": "text", "key": "a"}, {"type": "colour", "key": "b"})
    assert shape_problems(data) == [("bundle.unknown-type", "/fields/1/type")]


def test_unknown_key_path_skips_union_tag(shape_problems) -> None:
    data = make_form({"type": "text", "key": "a", "colour": "red"})
    assert shape_problems(data) == [("bundle.unknown-key", "/fields/0/colour")]


def test_missing_key(shape_problems) -> None:
    data = make_form({"type": "relation", "key": "a"})
    assert shape_problems(data) == [("bundle.missing-key", "/fields/0/form")]


def test_bad_key_spelling(shape_problems) -> None:
    data = make_form({"type": "text", "key": "Bad-Key"})
    assert shape_problems(data) == [("bundle.invalid-value", "/fields/0/key")]


def test_bad_regex(shape_problems) -> None:
    data = make_form({"type": "text", "key": "a", "regex": "(unclosed"})
    assert shape_problems(data) == [("form.bad-regex", "/fields/0/regex")]


@pytest.mark.parametrize(
    "pattern",
    ["WO-{YYYYMM}", "WO-{###}-{###}", "WO-{QQ}-{###}", "WO-{YYYY-{###}", "WO-{#############}"],
)
def test_bad_autonumber_pattern(shape_problems, pattern: str) -> None:
    data = make_form({"type": "autonumber", "key": "n", "pattern": pattern})
    assert shape_problems(data) == [("form.bad-autonumber-pattern", "/fields/0/pattern")]


@pytest.mark.parametrize("pattern", ["WO-{YYYYMM}-{######}", "{#}", "SR-{YYYYMMDD}-{####}"])
def test_good_autonumber_pattern(pattern: str) -> None:
    assert check_autonumber_pattern(pattern) == pattern


def test_subform_cannot_nest_subform(shape_problems) -> None:
    inner = {"type": "subform", "key": "inner", "fields": [{"type": "text", "key": "x"}]}
    data = make_form({"type": "subform", "key": "outer", "fields": [inner]})
    assert shape_problems(data) == [("bundle.unknown-type", "/fields/0/fields/0/type")]


def test_select_needs_exactly_one_option_source(shape_problems) -> None:
    neither = make_form({"type": "select", "key": "s"})
    both = make_form(
        {"type": "select", "key": "s", "option_set": "x", "options": [{"key": "a", "label": "A"}]}
    )
    assert shape_problems(neither) == [("form.option-source", "/fields/0")]
    assert shape_problems(both) == [("form.option-source", "/fields/0")]


def test_select_options_two_levels_at_most(shape_problems) -> None:
    options = [
        {"key": "a", "label": "A"},
        {"key": "b", "label": "B", "parent": "a"},
        {"key": "c", "label": "C", "parent": "b"},
    ]
    data = make_form({"type": "select", "key": "s", "options": options})
    assert shape_problems(data) == [("form.option-depth", "/fields/0")]


def test_min_above_max(shape_problems) -> None:
    data = make_form({"type": "number", "key": "n", "min": 5, "max": 1})
    assert shape_problems(data) == [("form.bad-range", "/fields/0")]


def test_default_and_default_expr_conflict(shape_problems) -> None:
    data = make_form({"type": "number", "key": "n", "default": 1, "default_expr": "2"})
    assert shape_problems(data) == [("form.conflicting-options", "/fields/0")]


def test_unknown_timezone(shape_problems) -> None:
    data = make_form({"type": "datetime", "key": "d", "timezone": "Mars/Olympus"})
    assert shape_problems(data) == [("form.unknown-timezone", "/fields/0/timezone")]


def test_rollup_sum_needs_field(shape_problems) -> None:
    data = make_form({"type": "rollup", "key": "r", "relation": "x", "aggregate": "sum"})
    assert shape_problems(data) == [("form.missing-option", "/fields/0")]


def test_all_problems_reported_together(shape_problems) -> None:
    data = make_form(
        {"type": "text", "key": "a", "regex": "("},
        {"type": "nope", "key": "b"},
        {"type": "money", "key": "c", "currency": "yuan"},
    )
    assert shape_problems(data) == [
        ("form.bad-regex", "/fields/0/regex"),
        ("bundle.unknown-type", "/fields/1/type"),
        ("bundle.invalid-value", "/fields/2/currency"),
    ]


def test_form_level_unknown_key(shape_problems) -> None:
    data = make_form({"type": "text", "key": "a"}, colour="red")
    assert shape_problems(data) == [("bundle.unknown-key", "/colour")]


def test_layout_cells_accept_keys_and_widths() -> None:
    layout = {"sections": [{"key": "s", "fields": ["a", {"field": "b", "width": "1/2"}]}]}
    data = make_form({"type": "text", "key": "a"}, {"type": "text", "key": "b"}, layout=layout)
    spec = FormSpec.model_validate(data)
    assert spec.layout is not None
    assert [s.key for s in spec.layout.all_sections()] == ["s"]


def test_spec_is_frozen() -> None:
    spec = FormSpec.model_validate(make_form({"type": "text", "key": "a"}))
    with pytest.raises(ValueError):
        spec.key = "other"  # type: ignore[misc]
