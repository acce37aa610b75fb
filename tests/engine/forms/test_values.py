"""Value codecs: every field type's coercion, good and bad, with codes and locs; JSON output."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from engine.errors import SubmissionError
from engine.forms import FIELD_CLASSES, FieldSpec
from engine.forms.values import CODECS, coerce, has_value, is_computed, record_to_json, to_json

_ADAPTER: TypeAdapter[Any] = TypeAdapter(FieldSpec)
SHA = "a" * 64
FILE = {"id": "f1", "name": "a.pdf", "size": 10, "content_type": "application/pdf", "sha256": SHA}


def field(type_: str, **options: Any) -> Any:
    return _ADAPTER.validate_python({"type": type_, "key": "v", **options})


def codes(type_: str, raw: Any, *, lenient: bool = False, **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(SubmissionError) as info:
        coerce(field(type_, **options), raw, loc="v", lenient=lenient)
    return [(e.loc, e.code) for e in info.value.errors]


def test_every_value_type_has_a_codec() -> None:
    layout = {"section", "divider", "description"}
    assert {name for name, cls in FIELD_CLASSES.items() if cls not in CODECS} == layout
    assert is_computed(field("formula", expr="1", result_type="number"))
    assert not has_value(field("divider"))


GOOD = [
    ("text", {}, "  hello ", "hello"),
    ("text", {}, "   ", None),
    ("textarea", {}, "  two\nlines  ", "  two\nlines  "),
    ("rich_text", {}, "<p>x</p>", "<p>x</p>"),
    ("number", {}, 3, Decimal(3)),
    ("number", {}, 2.5, Decimal("2.5")),
    ("number", {}, "-1.25e2", Decimal("-125")),
    ("number", {"decimals": 0}, "2.5", Decimal(3)),
    ("money", {}, "12.345", Decimal("12.35")),
    ("money", {"decimals": 0}, 12.5, Decimal(13)),
    ("percent", {}, 12.5, Decimal("12.5")),
    ("date", {}, "2026-11-22", dt.date(2026, 11, 22)),
    ("datetime", {}, "2026-11-22T08:00:00+08:00", dt.datetime(2026, 11, 22, tzinfo=dt.UTC)),
    ("datetime", {}, "2026-11-22T08:00:00Z", dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC)),
    (
        "datetime",
        {"timezone": "Asia/Shanghai"},
        "2026-11-22T08:00:00",
        dt.datetime(2026, 11, 22, tzinfo=dt.UTC),
    ),
    ("time", {}, "09:30", dt.time(9, 30)),
    (
        "date_range",
        {},
        {"start": "2026-01-01", "end": "2026-01-31"},
        {"start": dt.date(2026, 1, 1), "end": dt.date(2026, 1, 31)},
    ),
    ("select", {"options": [{"key": "a", "label": "A"}]}, "a", "a"),
    (
        "multiselect",
        {"options": [{"key": "a", "label": "A"}, {"key": "b", "label": "B"}]},
        ["b", "a", "b"],
        ["b", "a"],
    ),
    ("boolean", {}, True, True),
    ("rating", {}, 4, 4),
    ("email", {}, " Ann@Example.com ", "Ann@Example.com"),
    ("phone", {}, "+86 138-0013-8000", "+86 138-0013-8000"),
    ("url", {}, "https://example.com/a?b=1", "https://example.com/a?b=1"),
    (
        "address",
        {},
        {"province": "浙江省", "city": " 杭州市 ", "detail": ""},
        {"province": "浙江省", "city": "杭州市", "district": None, "detail": None},
    ),
    ("location", {}, {"lng": 120.1, "lat": 30.2}, {"lng": 120.1, "lat": 30.2, "accuracy": None}),
    ("attachment", {"multiple": True}, [FILE], [FILE]),
    ("signature", {}, FILE, [FILE]),
    ("user", {}, 5, 5),
    ("department", {"multiple": True}, [3, 1, 3], [3, 1]),
    ("relation", {"form": "customer"}, 9, 9),
    ("relation", {"form": "customer", "multiple": True}, [], None),
    (
        "subform",
        {"fields": [{"type": "number", "key": "qty"}]},
        [{"qty": 2}],
        [{"qty": Decimal(2)}],
    ),
]


@pytest.mark.parametrize(("type_", "options", "raw", "expected"), GOOD)
def test_good_values(type_: str, options: dict[str, Any], raw: Any, expected: Any) -> None:
    assert coerce(field(type_, **options), raw, loc="v") == expected


def test_cascade_takes_any_level_key() -> None:
    spec = field(
        "cascade",
        levels=[{"key": "province", "label": "P"}, {"key": "city", "label": "C"}],
        options=[{"key": "zj", "label": "浙江"}, {"key": "hz", "label": "杭州", "parent": "zj"}],
    )
    assert coerce(spec, "hz", loc="v") == "hz"
    assert coerce(spec, "杭州", loc="v", lenient=True) == "hz"


@pytest.mark.parametrize("type_", sorted({case[0] for case in GOOD}))
def test_null_is_blank(type_: str) -> None:
    options = next(case[1] for case in GOOD if case[0] == type_)
    expected = [] if type_ == "subform" else None
    assert coerce(field(type_, **options), None, loc="v") == expected


BAD = [
    ("text", {}, 5, "v", "submission.wrong-type"),
    ("text", {"max_length": 3}, "abcd", "v", "submission.too-long"),
    ("text", {"min_length": 3}, "ab", "v", "submission.too-short"),
    ("text", {}, "x" * 256, "v", "submission.too-long"),
    ("text", {}, "a\x00b", "v", "submission.invalid-character"),
    ("text", {"regex": r"^\d{3}$"}, "12a", "v", "submission.pattern"),
    ("textarea", {}, "x" * 65_537, "v", "submission.too-long"),
    ("rich_text", {}, "x" * 1_048_577, "v", "submission.too-long"),
    ("number", {}, True, "v", "submission.wrong-type"),
    ("number", {}, "NaN", "v", "submission.invalid-number"),
    ("number", {}, float("inf"), "v", "submission.not-finite"),
    ("number", {}, Decimal("NaN"), "v", "submission.not-finite"),
    ("number", {}, "1,000", "v", "submission.invalid-number"),
    ("number", {}, "1e30", "v", "submission.out-of-range"),
    ("number", {"min": 0, "max": 10}, 11, "v", "submission.out-of-range"),
    ("number", {"min": 0}, -0.5, "v", "submission.out-of-range"),
    ("money", {}, [1], "v", "submission.wrong-type"),
    ("percent", {}, 100_000, "v", "submission.out-of-range"),
    ("date", {}, "2026-02-30", "v", "submission.invalid-date"),
    ("date", {}, 20260101, "v", "submission.wrong-type"),
    ("date", {"min": "2026-01-01"}, "2025-12-31", "v", "submission.out-of-range"),
    ("datetime", {}, "yesterday", "v", "submission.invalid-datetime"),
    ("time", {}, "25:00", "v", "submission.invalid-time"),
    ("datetime", {}, "9999-12-31T23:00:00-05:00", "v", "submission.out-of-range"),
    ("datetime", {}, "0001-01-01T00:00:00+05:00", "v", "submission.out-of-range"),
    (
        "date_range",
        {},
        {"start": "2026-02-01", "end": "2026-01-01"},
        "v/end",
        "submission.range-order",
    ),
    ("date_range", {}, {"start": "2026-02-01"}, "v/end", "submission.required"),
    ("date_range", {}, {"start": "x", "end": "2026-01-01"}, "v/start", "submission.invalid-date"),
    ("date_range", {}, {"from": "2026-01-01"}, "v/from", "submission.unknown-field"),
    ("select", {"options": [{"key": "a", "label": "A"}]}, "b", "v", "submission.unknown-option"),
    ("select", {"options": [{"key": "a", "label": "A"}]}, 1, "v", "submission.wrong-type"),
    (
        "select",
        {"options": [{"key": "a", "label": "A", "retired": True}]},
        "a",
        "v",
        "submission.retired-option",
    ),
    (
        "multiselect",
        {"options": [{"key": "a", "label": "A"}]},
        ["a", "z"],
        "v/1",
        "submission.unknown-option",
    ),
    ("multiselect", {"options": [{"key": "a", "label": "A"}]}, "a", "v", "submission.wrong-type"),
    (
        "multiselect",
        {"options": [{"key": "a", "label": "A"}, {"key": "b", "label": "B"}], "max_items": 1},
        ["a", "b"],
        "v",
        "submission.too-many",
    ),
    ("boolean", {}, "true", "v", "submission.wrong-type"),
    ("boolean", {}, 1, "v", "submission.wrong-type"),
    ("rating", {}, 6, "v", "submission.out-of-range"),
    ("rating", {}, 0, "v", "submission.out-of-range"),
    ("rating", {}, 2.5, "v", "submission.wrong-type"),
    ("email", {}, "not-an-email", "v", "submission.invalid-email"),
    ("email", {}, "a@b", "v", "submission.invalid-email"),
    ("phone", {}, "call me", "v", "submission.invalid-phone"),
    ("url", {}, "javascript:alert(1)", "v", "submission.invalid-url"),
    ("url", {}, "ftp://example.com", "v", "submission.invalid-url"),
    ("url", {}, "https:///nohost", "v", "submission.invalid-url"),
    ("address", {}, "浙江省杭州市", "v", "submission.wrong-type"),
    ("address", {}, {"street": "x"}, "v/street", "submission.unknown-field"),
    ("address", {}, {"city": 5}, "v/city", "submission.wrong-type"),
    ("location", {}, {"lng": 200, "lat": 0}, "v/lng", "submission.out-of-range"),
    ("location", {}, {"lng": 0, "lat": -91}, "v/lat", "submission.out-of-range"),
    ("location", {}, {"lng": 1}, "v/lat", "submission.required"),
    (
        "location",
        {"max_accuracy_m": 50},
        {"lng": 1, "lat": 1, "accuracy": 80},
        "v/accuracy",
        "submission.out-of-range",
    ),
    ("attachment", {}, [FILE, FILE], "v", "submission.too-many"),
    (
        "attachment",
        {"multiple": True},
        [{**FILE, "sha256": "x"}],
        "v/0/sha256",
        "submission.invalid-file",
    ),
    ("attachment", {"multiple": True}, [{**FILE, "size": -1}], "v/0/size", "submission.wrong-type"),
    ("attachment", {"multiple": True}, [{"id": "f1"}], "v/0/name", "submission.required"),
    ("image", {"accept": ["image/*"]}, [FILE], "v/0", "submission.file-type"),
    (
        "attachment",
        {"max_size_mb": 1},
        [{**FILE, "size": 2_000_000}],
        "v/0/size",
        "submission.file-too-large",
    ),
    ("user", {}, "5", "v", "submission.wrong-type"),
    ("user", {}, 0, "v", "submission.invalid-id"),
    ("user", {}, True, "v", "submission.wrong-type"),
    ("department", {"multiple": True}, 3, "v", "submission.wrong-type"),
    ("relation", {"form": "x", "multiple": True}, [1, -2], "v/1", "submission.invalid-id"),
    ("formula", {"expr": "1", "result_type": "number"}, 1, "v", "submission.read-only"),
    ("autonumber", {"pattern": "T-{###}"}, "T-001", "v", "submission.read-only"),
    (
        "subform",
        {"fields": [{"type": "number", "key": "qty"}]},
        {"qty": 1},
        "v",
        "submission.wrong-type",
    ),
]


@pytest.mark.parametrize(("type_", "options", "raw", "loc", "code"), BAD)
def test_bad_values(type_: str, options: dict[str, Any], raw: Any, loc: str, code: str) -> None:
    assert codes(type_, raw, **options) == [(loc, code)]


LENIENT = [
    ("boolean", "是", True),
    ("boolean", "否", False),
    ("boolean", "1", True),
    ("boolean", "FALSE", False),
    ("boolean", "", None),
    ("number", "1,234.5", Decimal("1234.5")),
    ("percent", "12.5%", Decimal("12.5")),
    ("date", "2026/11/22", dt.date(2026, 11, 22)),
    ("user", "12", 12),
    ("rating", "3", 3),
    ("text", 42, "42"),
]


@pytest.mark.parametrize(("type_", "raw", "expected"), LENIENT)
def test_lenient_text_input(type_: str, raw: Any, expected: Any) -> None:
    assert coerce(field(type_), raw, loc="v", lenient=True) == expected


def test_lenient_decimal_comma_is_not_a_thousands_separator() -> None:
    assert codes("number", "1,5", lenient=True) == [("v", "submission.invalid-number")]


def test_lenient_is_only_for_text_sources() -> None:
    assert codes("boolean", "maybe", lenient=True) == [("v", "submission.invalid-boolean")]
    assert codes("number", "1,234") == [("v", "submission.invalid-number")]


def test_lenient_multiselect_by_label_and_separator() -> None:
    spec = field(
        "multiselect",
        options=[
            {"key": "a", "label": {"en": "Apple", "zh": "苹果"}},
            {"key": "b", "label": "Banana"},
        ],
    )
    assert coerce(spec, "苹果, Banana;a", loc="v", lenient=True) == ["a", "b"]


def test_retired_option_stays_when_already_held() -> None:
    spec = field("select", options=[{"key": "a", "label": "A", "retired": True}])
    assert coerce(spec, "a", loc="v", current="a") == "a"


def test_shared_option_set_needs_compiled_options() -> None:
    spec = field("select", option_set="colors")
    assert coerce(spec, "red", loc="v") == "red"  # unknown set: any well-formed key
    options = {
        "v": {
            "blue": _ADAPTER.validate_python(
                {"type": "select", "key": "x", "options": [{"key": "blue", "label": "B"}]}
            ).options[0]
        }
    }
    with pytest.raises(SubmissionError) as info:
        coerce(spec, "red", loc="v", options=options)
    assert info.value.errors[0].code == "submission.unknown-option"


def test_naive_datetime_uses_the_callers_zone() -> None:
    value = coerce(field("datetime"), "2026-11-22 08:00", loc="v", timezone="Asia/Shanghai")
    assert value == dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    assert value.tzinfo is dt.UTC


def test_one_megabyte_string_refused_in_text_kinds() -> None:
    big = "x" * 1_048_576
    for type_ in ("text", "textarea", "email", "url", "phone"):
        assert codes(type_, big)[0][1] == "submission.too-long"
    assert coerce(field("rich_text"), big, loc="v") == big
    assert codes("text", big, max_length=1_000_000)[0][1] == "submission.too-long"


INJECTIONS = [
    "'; DROP TABLE users; --",
    "<script>alert('x')</script>",
    "Robert'); DELETE FROM ticket WHERE ('1'='1",
    "{{7*7}} ${7*7} %s %(x)s",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_returned_verbatim(text: str) -> None:
    assert coerce(field("text"), text, loc="v") == text
    assert coerce(field("rich_text"), text, loc="v") == text


def test_catastrophic_regex_is_bounded_by_length() -> None:
    spec = field("text", regex=r"^(a+)+$", max_length=100_000)
    assert codes("text", "a" * 5000 + "!", regex=r"^(a+)+$", max_length=100_000) == [
        ("v", "submission.pattern")
    ]
    assert coerce(spec, "aaaa", loc="v") == "aaaa"


def test_subform_rows_are_located() -> None:
    spec = field(
        "subform",
        fields=[{"type": "number", "key": "qty", "min": 1}, {"type": "text", "key": "sku"}],
        max_rows=5,
    )
    rows = [{"qty": 1}, {"qty": "x", "sku": 5}, {"nope": 1}, "row"]
    with pytest.raises(SubmissionError) as info:
        coerce(spec, rows, loc="items", current=None)
    assert [(e.loc, e.code) for e in info.value.errors] == [
        ("items/1/qty", "submission.invalid-number"),
        ("items/1/sku", "submission.wrong-type"),
        ("items/2/nope", "submission.unknown-field"),
        ("items/3", "submission.wrong-type"),
    ]


def test_subform_row_ids_and_limits() -> None:
    spec = field("subform", fields=[{"type": "number", "key": "qty"}], max_rows=1, min_rows=1)
    assert coerce(spec, [{"id": 4, "qty": 1}], loc="items") == [{"id": 4, "qty": Decimal(1)}]
    assert codes("subform", [{}, {}], fields=[{"type": "number", "key": "qty"}], max_rows=1) == [
        ("v", "submission.too-many")
    ]


JSON = [
    ("number", Decimal("2.50"), 2.5),
    ("number", Decimal("3.00"), 3),
    ("money", None, None),
    ("date", dt.date(2026, 1, 2), "2026-01-02"),
    ("datetime", dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC), "2026-01-02T03:04:00Z"),
    ("time", dt.time(9, 5), "09:05:00"),
    (
        "date_range",
        {"start": dt.date(2026, 1, 1), "end": dt.date(2026, 1, 2)},
        {"start": "2026-01-01", "end": "2026-01-02"},
    ),
    ("multiselect", ["a"], ["a"]),
    ("boolean", False, False),
]


@pytest.mark.parametrize(("type_", "value", "expected"), JSON)
def test_to_json(type_: str, value: Any, expected: Any) -> None:
    options = {"options": [{"key": "a", "label": "A"}]} if type_ == "multiselect" else {}
    assert to_json(field(type_, **options), value) == expected


@pytest.mark.parametrize(
    ("type_", "options", "raw"),
    [
        ("number", {"decimals": 2}, "12.34"),
        ("datetime", {}, "2026-11-22T08:00:00Z"),
        ("date_range", {}, {"start": "2026-01-01", "end": "2026-01-31"}),
        ("attachment", {"multiple": True}, [FILE]),
        ("location", {}, {"lng": 1.5, "lat": 2.25, "accuracy": 10.0}),
        ("department", {"multiple": True}, [2, 1]),
    ],
)
def test_json_round_trip(type_: str, options: dict[str, Any], raw: Any) -> None:
    spec = field(type_, **options)
    value = coerce(spec, raw, loc="v")
    assert coerce(spec, to_json(spec, value), loc="v") == value


@pytest.mark.parametrize(("type_", "options", "raw", "expected"), GOOD)
def test_canonical_values_are_accepted_as_input(
    type_: str, options: dict[str, Any], raw: Any, expected: Any
) -> None:
    spec = field(type_, **options)
    value = coerce(spec, raw, loc="v")
    assert coerce(spec, value, loc="v") == value
    assert coerce(spec, value, loc="v", lenient=True) == value


def test_record_to_json() -> None:
    fields = {"d": field("date"), "n": field("number")}
    record = {
        "d": dt.date(2026, 1, 2),
        "n": Decimal("1.50"),
        "id": 3,
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }
    assert record_to_json(fields, record) == {
        "d": "2026-01-02",
        "n": 1.5,
        "id": 3,
        "created_at": "2026-01-01T00:00:00Z",
    }
