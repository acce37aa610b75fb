"""The pure list query model: filter checking with paths, sort keys, cursors, date windows."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from engine.bundles import load_bundle
from engine.forms.compiler import CompiledForm, compile_form
from engine.forms.listing import (
    MAX_LIMIT,
    AllOf,
    Condition,
    ListQuery,
    ListQueryError,
    Not,
    Relative,
    build_list_query,
    date_window,
    encode_cursor,
    resolve_field,
)

BUNDLE = Path(__file__).resolve().parents[2] / "fixtures" / "lists_bundle"


@pytest.fixture(scope="module")
def forms() -> Any:
    return load_bundle(BUNDLE).definitions["forms"]


@pytest.fixture(scope="module")
def item(forms: Any) -> CompiledForm:
    return compile_form(forms["item"], forms=forms)


def _errors(item: CompiledForm, forms: Any, **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ListQueryError) as caught:
        build_list_query(item, forms=forms, **kw)
    return [(e.code, e.loc) for e in caught.value.errors]


def test_a_valid_tree_is_read(item: CompiledForm, forms: Any) -> None:
    tree = {
        "and": [
            {"field": "status", "op": "in", "value": ["new", "open"]},
            {"not": {"field": "due", "op": "eq", "value": {"last_n_days": 7}}},
        ]
    }
    query = build_list_query(item, forms=forms, filter=tree, sort=["-due", "title"], limit=50)
    assert isinstance(query.filter, AllOf)
    first, second = query.filter.items
    assert isinstance(first, Condition) and first.value == ("new", "open")
    assert isinstance(second, Not) and isinstance(second.item, Condition)
    assert second.item.value == Relative("last_n_days", 7)
    assert [(k.ref.name, k.descending) for k in query.sort] == [("due", True), ("title", False)]
    assert query.limit == 50 and query.after is None


BAD_VALUE = ("list.bad-value", "/filter/value")
BAD_OP = ("list.bad-operator", "/filter/op")
UNKNOWN = ("list.unknown-field", "/filter/field")


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"field": "nope", "op": "eq", "value": 1}, [UNKNOWN]),
        ({"field": "qty", "op": "contains", "value": 1}, [BAD_OP]),
        ({"field": "qty", "op": "eq", "value": "ten"}, [BAD_VALUE]),
        ({"field": "qty", "op": "eq", "value": True}, [BAD_VALUE]),
        ({"field": "due", "op": "eq", "value": "2026-13-01"}, [BAD_VALUE]),
        ({"field": "due", "op": "eq", "value": "someday"}, [BAD_VALUE]),
        ({"field": "due", "op": "eq", "value": {"last_n_days": 0}}, [BAD_VALUE]),
        ({"field": "due", "op": "between", "value": "today"}, [BAD_VALUE]),
        ({"field": "qty", "op": "between", "value": [1]}, [BAD_VALUE]),
        ({"field": "qty", "op": "in", "value": []}, [BAD_VALUE]),
        ({"field": "qty", "op": "is_blank", "value": 3}, [BAD_VALUE]),
        ({"field": "vendor", "op": "eq", "value": "1; DROP"}, [BAD_VALUE]),
        ({"field": "urgent", "op": "lt", "value": True}, [BAD_OP]),
        ({"field": "colors", "op": "eq", "value": "red"}, [BAD_OP]),
        ({"field": "files", "op": "is_blank"}, [UNKNOWN]),
        ({"field": "place.planet", "op": "eq", "value": "x"}, [UNKNOWN]),
        ({"field": "title", "op": "contains", "value": ""}, [BAD_VALUE]),
        ({"field": "title", "op": "eq", "value": "x" * 1001}, [BAD_VALUE]),
        ({"field": "title", "op": "eq", "value": 1, "extra": 1}, [("list.bad-filter", "/filter")]),
        ({"and": []}, [("list.bad-filter", "/filter")]),
        ({"and": [{}], "or": []}, [("list.bad-filter", "/filter")]),
        ([], [("list.bad-filter", "/filter")]),
        (
            {"and": [{"field": "qty", "op": "gt", "value": 1}, {"or": [{"field": "x", "op": "eq"}]},
                     {"field": "qty", "op": "gt", "value": "a"}]},
            [("list.unknown-field", "/filter/and/1/or/0/field"),
             ("list.bad-value", "/filter/and/2/value")],
        ),
    ],
)  # fmt: skip
def test_bad_filters_report_code_and_path(
    item: CompiledForm, forms: Any, tree: Any, expected: list[tuple[str, str]]
) -> None:
    assert _errors(item, forms, filter=tree) == expected


def test_a_huge_filter_is_refused(item: CompiledForm, forms: Any) -> None:
    tree = {"or": [{"field": "qty", "op": "eq", "value": n} for n in range(500)]}
    assert ("list.filter-too-large", "/filter/or/199") in _errors(item, forms, filter=tree)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"sort": ["nope"]}, [("list.unknown-field", "/sort/0")]),
        ({"sort": ["title", "colors"]}, [("list.not-sortable", "/sort/1")]),
        ({"sort": ["a", "b", "c", "d", "e", "f"]}, [("list.too-many-sort-keys", "/sort")]),
        ({"limit": 0}, [("list.bad-limit", "/limit")]),
        ({"limit": MAX_LIMIT + 1}, [("list.bad-limit", "/limit")]),
        ({"search": " "}, [("list.bad-search", "/q")]),
        ({"search": "x" * 201}, [("list.bad-search", "/q")]),
        ({"filter_expr": "qty +"}, [("list.bad-filter-expr", "/filter_expr")]),
        ({"filter_expr": "qty + 1"}, [("list.bad-filter-expr", "/filter_expr")]),
        ({"filter_expr": "nope = 1"}, [("list.bad-filter-expr", "/filter_expr")]),
    ],
)
def test_bad_requests(item: CompiledForm, forms: Any, kw: Any, expected: Any) -> None:
    assert _errors(item, forms, **kw) == expected


def test_names_resolve_to_columns_and_joins(item: CompiledForm, forms: Any) -> None:
    lookup = resolve_field(item.spec, "vendor_name", forms)
    assert lookup is not None and (lookup.via, lookup.column, lookup.target_form) == (
        "vendor",
        "name",
        "vendor",
    )
    part = resolve_field(item.spec, "place.city", forms)
    assert part is not None and (part.column, part.part, part.family) == ("place", "city", "text")
    owner = resolve_field(item.spec, "owner", forms)
    assert owner is not None and owner.column == "owner_id" and owner.system
    assert resolve_field(item.spec, "vendor_name", None) is None  # lookups need the forms


def _query(item: CompiledForm, forms: Any, **kw: Any) -> ListQuery:
    return build_list_query(item, forms=forms, **kw)


def test_cursor_round_trip(item: CompiledForm, forms: Any) -> None:
    query = _query(item, forms, sort=["-due", "qty", "seen_at", "urgent"])
    seen = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cursor = encode_cursor(query, [dt.date(2026, 1, 1), None, seen, True, 42])
    again = _query(item, forms, sort=["-due", "qty", "seen_at", "urgent"], cursor=cursor)
    assert again.after == (dt.date(2026, 1, 1), None, seen, True, 42)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"h": "x"}').decode(),
        "",
    ],
)
def test_tampered_cursors_are_refused(item: CompiledForm, forms: Any, cursor: str) -> None:
    codes = {code for code, _ in _errors(item, forms, sort=["title"], cursor=cursor)}
    assert codes <= {"list.bad-cursor", "list.cursor-mismatch"} and codes


def test_cursor_with_wrong_types_is_refused(item: CompiledForm, forms: Any) -> None:
    query = _query(item, forms, sort=["due"])
    payload = json.dumps({"h": query.digest, "v": ["'; DROP TABLE x; --", 1]})
    cursor = base64.urlsafe_b64encode(payload.encode()).decode()
    assert _errors(item, forms, sort=["due"], cursor=cursor) == [("list.bad-cursor", "/cursor")]
    payload = json.dumps({"h": query.digest, "v": ["2026-01-01", None]})  # id is never blank
    cursor = base64.urlsafe_b64encode(payload.encode()).decode()
    assert _errors(item, forms, sort=["due"], cursor=cursor) == [("list.bad-cursor", "/cursor")]


def test_cursor_of_another_query(item: CompiledForm, forms: Any) -> None:
    cursor = encode_cursor(_query(item, forms, sort=["qty"]), [1, 5])
    other = {"field": "qty", "op": "gt", "value": 0}
    assert _errors(item, forms, sort=["qty"], filter=other, cursor=cursor) == [
        ("list.cursor-mismatch", "/cursor")
    ]
    assert _errors(item, forms, sort=["qty"], trash=True, cursor=cursor) == [
        ("list.cursor-mismatch", "/cursor")
    ]


WED = dt.date(2026, 11, 18)


@pytest.mark.parametrize(
    ("value", "window"),
    [
        (Relative("today"), (WED, WED)),
        (Relative("yesterday"), (dt.date(2026, 11, 17),) * 2),
        (Relative("this_week"), (dt.date(2026, 11, 16), dt.date(2026, 11, 22))),
        (Relative("last_week"), (dt.date(2026, 11, 9), dt.date(2026, 11, 15))),
        (Relative("this_month"), (dt.date(2026, 11, 1), dt.date(2026, 11, 30))),
        (Relative("next_month"), (dt.date(2026, 12, 1), dt.date(2026, 12, 31))),
        (Relative("last_month"), (dt.date(2026, 10, 1), dt.date(2026, 10, 31))),
        (Relative("last_year"), (dt.date(2025, 1, 1), dt.date(2025, 12, 31))),
        (Relative("last_n_days", 7), (dt.date(2026, 11, 12), WED)),
        (Relative("next_n_days", 1), (WED, WED)),
    ],
)
def test_date_windows(value: Relative, window: tuple[dt.date, dt.date]) -> None:
    assert date_window(value, WED) == window


def test_month_windows_cross_years() -> None:
    january = dt.date(2027, 1, 15)
    assert date_window(Relative("last_month"), january) == (
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 31),
    )
    december = dt.date(2026, 12, 3)
    assert date_window(Relative("next_month"), december)[1] == dt.date(2027, 1, 31)
