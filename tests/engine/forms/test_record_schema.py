"""The per-form record JSON Schema: valid 2020-12, accepts real records, rejects bad ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.forms import FIELD_CLASSES, FormSpec, OptionSetsFile, compile_form
from engine.forms.compiler import CompiledForm
from engine.forms.record_schema import record_json_schema, record_schemas
from engine.forms.validation import EvalContext, validate_submission
from engine.forms.values import to_json

BUNDLE = Path(__file__).resolve().parents[3] / "templates" / "aftersales"
CONTEXT = EvalContext(now=dt.datetime(2026, 11, 23, tzinfo=dt.UTC), actor=1)
SHA = "b" * 64

ALL_TYPES = {
    "key": "sample",
    "label": {"en": "Sample", "zh": "样例"},
    "fields": [
        {"type": "text", "key": "name", "required": True, "max_length": 20},
        {"type": "textarea", "key": "notes"},
        {"type": "rich_text", "key": "body"},
        {"type": "number", "key": "qty", "min": 0, "max": 10},
        {"type": "money", "key": "price"},
        {"type": "percent", "key": "share"},
        {"type": "date", "key": "day"},
        {"type": "datetime", "key": "at"},
        {"type": "time", "key": "clock"},
        {"type": "date_range", "key": "span"},
        {
            "type": "select",
            "key": "color",
            "options": [
                {"key": "red", "label": "Red"},
                {"key": "old", "label": "Old", "retired": True},
            ],
        },
        {"type": "multiselect", "key": "tags", "options": [{"key": "a", "label": "A"}]},
        {
            "type": "cascade",
            "key": "place",
            "levels": [{"key": "p", "label": "P"}, {"key": "c", "label": "C"}],
            "options": [{"key": "zj", "label": "ZJ"}, {"key": "hz", "label": "HZ", "parent": "zj"}],
        },
        {"type": "boolean", "key": "ok"},
        {"type": "rating", "key": "stars", "max": 5},
        {"type": "email", "key": "mail"},
        {"type": "phone", "key": "tel"},
        {"type": "url", "key": "site"},
        {"type": "address", "key": "addr"},
        {"type": "location", "key": "geo"},
        {"type": "image", "key": "photos", "multiple": True},
        {"type": "attachment", "key": "file"},
        {"type": "signature", "key": "sign"},
        {"type": "user", "key": "who"},
        {"type": "department", "key": "depts", "multiple": True},
        {"type": "relation", "key": "other", "form": "sample"},
        {"type": "lookup", "key": "other_name", "relation": "other", "field": "name"},
        {
            "type": "subform",
            "key": "lines",
            "fields": [
                {"type": "number", "key": "n"},
                {"type": "formula", "key": "double", "expr": "n * 2", "result_type": "number"},
            ],
        },
        {"type": "rollup", "key": "total", "relation": "lines", "aggregate": "sum", "field": "n"},
        {"type": "formula", "key": "label", "expr": 'name & "!"', "result_type": "text"},
        {"type": "autonumber", "key": "code", "pattern": "S-{###}"},
        {"type": "divider", "key": "line"},
    ],
}
RECORD = {
    "name": "Ann",
    "notes": "<script>x</script>",
    "qty": 3,
    "price": 9.99,
    "share": 12.5,
    "day": "2026-11-22",
    "at": "2026-11-22T08:00:00+08:00",
    "clock": "09:30",
    "span": {"start": "2026-01-01", "end": "2026-01-02"},
    "color": "red",
    "tags": ["a"],
    "place": "hz",
    "ok": True,
    "stars": 5,
    "mail": "ann@example.com",
    "tel": "+86 10 1234 5678",
    "site": "https://example.com",
    "addr": {"province": "浙江省", "city": "杭州市"},
    "geo": {"lng": 120.2, "lat": 30.3, "accuracy": 5},
    "photos": [
        {"id": "p1", "name": "a.png", "size": 3, "content_type": "image/png", "sha256": SHA}
    ],
    "file": [
        {"id": "f1", "name": "a.pdf", "size": 3, "content_type": "application/pdf", "sha256": SHA}
    ],
    "who": 2,
    "depts": [1, 2],
    "other": 4,
    "lines": [{"n": 1}, {"n": 2}],
}


@pytest.fixture(scope="module")
def sample() -> CompiledForm:
    return compile_form(FormSpec.model_validate(ALL_TYPES))


def validator(form: CompiledForm, mode: Any) -> Draft202012Validator:
    schema = record_json_schema(form, mode=mode)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_sample_covers_every_value_type() -> None:
    used = {item["type"] for item in ALL_TYPES["fields"]}  # type: ignore[index]
    assert set(FIELD_CLASSES) - used == {"section", "description"}


def test_schemas_are_valid_2020_12(sample: CompiledForm) -> None:
    for schema in record_schemas(sample).values():
        Draft202012Validator.check_schema(schema)


def test_create_accepts_a_real_record(sample: CompiledForm) -> None:
    assert list(validator(sample, "create").iter_errors(RECORD)) == []


def test_read_accepts_what_validation_returns(sample: CompiledForm) -> None:
    clean = validate_submission(sample, RECORD, current=None, context=CONTEXT)
    as_json = {key: to_json(sample.fields[key], value) for key, value in clean.items()}
    as_json.update({"id": 1, "version": 1, "created_at": "2026-11-23T00:00:00Z", "total": 3})
    assert list(validator(sample, "read").iter_errors(as_json)) == []


BAD = [
    ({"name": 5}, "name"),
    ({"name": "x" * 21}, "name"),
    ({"qty": 11}, "qty"),
    ({"qty": "many"}, "qty"),
    ({"color": "blue"}, "color"),
    ({"color": "old"}, "color"),
    ({"stars": 6}, "stars"),
    ({"span": {"start": "2026-01-01"}}, "span"),
    ({"geo": {"lng": 181, "lat": 0}}, "geo"),
    ({"photos": [{"id": "p1"}]}, "photos"),
    ({"who": 0}, "who"),
    ({"depts": 3}, "depts"),
    ({"lines": [{"n": 1, "bogus": 2}]}, "lines"),
    ({"unknown": 1}, None),
    ({"day": "22/11/2026"}, "day"),
    ({"mail": "nope"}, "mail"),
]


@pytest.mark.parametrize(("change", "where"), BAD)
def test_create_rejects_bad_values(
    sample: CompiledForm, change: dict[str, Any], where: Any
) -> None:
    errors = list(validator(sample, "create").iter_errors({**RECORD, **change}))
    assert errors
    if where is not None:
        assert errors[0].absolute_path[0] == where


def test_required_on_create_only(sample: CompiledForm) -> None:
    partial = {"qty": 1}
    assert list(validator(sample, "create").iter_errors(partial))
    assert list(validator(sample, "update").iter_errors(partial)) == []


def test_computed_fields_are_read_only(sample: CompiledForm) -> None:
    properties = record_json_schema(sample, mode="create")["properties"]
    assert all(properties[key]["readOnly"] for key in ("label", "code", "total", "other_name"))
    assert "line" not in properties
    assert properties["lines"]["items"]["properties"]["double"]["readOnly"]


def test_retired_options_readable_but_not_writable(sample: CompiledForm) -> None:
    read = record_json_schema(sample, mode="read")["properties"]["color"]["enum"]
    create = record_json_schema(sample, mode="create")["properties"]["color"]["enum"]
    assert "old" in read and "old" not in create


def test_ticket_schema() -> None:
    forms = {
        p.stem: FormSpec.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
        for p in (BUNDLE / "forms").glob("*.yaml")
    }
    text = (BUNDLE / "data" / "option_sets.yaml").read_text(encoding="utf-8")
    sets = {s.key: s for s in OptionSetsFile.model_validate(yaml.safe_load(text)).option_sets}
    ticket = compile_form(forms["ticket"], forms=forms, option_sets=sets)
    schema = record_json_schema(ticket, mode="create")
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["priority"]["enum"] == ["urgent", "high", "medium", "low", None]
    assert set(schema["required"]) == {
        "subject",
        "description",
        "channel",
        "ticket_type",
        "customer",
    }  # contact: required unless the channel is qr; priority: defaults to medium


def test_every_aftersales_form_has_valid_schemas() -> None:
    forms = {
        p.stem: FormSpec.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
        for p in (BUNDLE / "forms").glob("*.yaml")
    }
    text = (BUNDLE / "data" / "option_sets.yaml").read_text(encoding="utf-8")
    sets = {s.key: s for s in OptionSetsFile.model_validate(yaml.safe_load(text)).option_sets}
    for spec in forms.values():
        compiled = compile_form(spec, forms=forms, option_sets=sets)
        for schema in record_schemas(compiled).values():
            Draft202012Validator.check_schema(schema)
