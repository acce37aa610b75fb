"""Cell codecs: what export writes, import reads back to the same value."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from transfer_forms import order_form

from engine.forms.transfer import CellContext, CellError, decode_cell, encode_cell, field_options

FORM = order_form()
OPTIONS = field_options(FORM, {})


def _ctx(key: str, lang: str = "en", for_xlsx: bool = False) -> CellContext:
    return CellContext(lang=lang, options=OPTIONS.get(key), for_xlsx=for_xlsx)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("title", "=1+2"),
        ("qty", 3),
        ("due", "2026-01-31"),
        ("seen_at", "2026-01-31T08:00:00+00:00"),
        ("level", "high"),
        ("tags", ["a", "b"]),
        ("urgent", True),
        ("urgent", False),
        ("items", [{"sku": "X-1", "count": 2}]),
    ],
)
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("for_xlsx", [False, True])
def test_round_trip(key: str, value: Any, lang: str, for_xlsx: bool) -> None:
    field = FORM.fields[key]
    ctx = _ctx(key, lang, for_xlsx)
    cell = encode_cell(field, value, ctx)
    assert decode_cell(field, cell, ctx) == value


def test_labels_for_people() -> None:
    assert encode_cell(FORM.fields["level"], "high", _ctx("level", "zh")) == "高"
    assert encode_cell(FORM.fields["tags"], ["a", "b"], _ctx("tags")) == "Alpha; Beta"
    assert encode_cell(FORM.fields["urgent"], True, _ctx("urgent", "zh")) == "是"


def test_lenient_reading() -> None:
    assert decode_cell(FORM.fields["level"], " HIGH ", _ctx("level")) == "high"
    assert decode_cell(FORM.fields["tags"], "甲；beta", _ctx("tags")) == ["a", "b"]
    assert decode_cell(FORM.fields["qty"], "1,234.5", _ctx("qty")) == "1234.5"
    assert decode_cell(FORM.fields["phone"], 13800000000.0, _ctx("phone")) == "13800000000"
    assert decode_cell(FORM.fields["due"], 46023, _ctx("due")) == "2026-01-01"
    assert decode_cell(FORM.fields["due"], dt.datetime(2026, 1, 2), _ctx("due")) == "2026-01-02"
    assert decode_cell(FORM.fields["title"], "  ", _ctx("title")) is None


@pytest.mark.parametrize(
    ("key", "cell", "code"),
    [("items", "[{broken", "transfer.bad-json"), ("urgent", "maybe", "transfer.bad-cell")],
)
def test_unreadable_cells(key: str, cell: str, code: str) -> None:
    with pytest.raises(CellError) as err:
        decode_cell(FORM.fields[key], cell, _ctx(key))
    assert err.value.code == code
