"""Column mapping: by key or label in any language; all column problems reported together."""

from __future__ import annotations

import pytest
from transfer_forms import ORDER_FORM, order_form

from engine.errors import SubmissionError
from engine.forms.transfer import map_columns


def _problems(headers: list[str], **kwargs: object) -> list[tuple[str, str]]:
    with pytest.raises(SubmissionError) as err:
        map_columns(order_form(), headers, **kwargs)  # type: ignore[arg-type]
    return sorted((e.code, e.loc) for e in err.value.errors)


def test_matches_keys_and_labels_ignoring_case_and_spaces() -> None:
    mapping = map_columns(order_form(), ["TITLE", "数量", "due  DATE", "No.", "双倍", "#6"])
    assert [(c.header, c.field.key) for c in mapping.columns] == [
        ("TITLE", "title"),
        ("数量", "qty"),
        ("due  DATE", "due"),
    ]
    assert mapping.skipped == ("No.", "双倍", "#6")


def test_explicit_mapping_wins_and_can_skip() -> None:
    mapping = map_columns(
        order_form(), ["Name", "Quantity", "junk"], mapping={"Name": "title", "junk": None}
    )
    assert [(c.header, c.field.key) for c in mapping.columns] == [
        ("Name", "title"),
        ("Quantity", "qty"),
    ]


def test_every_column_problem_at_once() -> None:
    assert _problems(["Quantity", "qty", "Colour"], mapping={"Missing": "title"}) == [
        ("transfer.duplicate-column", "columns/qty"),
        ("transfer.missing-column", "columns/title"),
        ("transfer.unknown-column", "columns/Colour"),
        ("transfer.unknown-column", "columns/Missing"),
    ]


def test_mapping_to_an_unknown_field() -> None:
    assert _problems(["Title", "X"], mapping={"X": "nope"}) == [
        ("transfer.unknown-field", "columns/X")
    ]


def test_key_row_is_recognised() -> None:
    mapping = map_columns(order_form(), ["Title", "Quantity"])
    assert mapping.is_key_row(("title", "qty"))
    assert not mapping.is_key_row(("title", "3"))


def test_required_fields_with_a_default_need_no_column() -> None:
    extra = {
        "type": "select",
        "key": "state",
        "label": "State",
        "required": True,
        "default": "open",
        "options": [{"key": "open", "label": "Open"}],
    }
    form = order_form(fields=[*ORDER_FORM["fields"], extra])
    assert [c.field.key for c in map_columns(form, ["Title"]).columns] == ["title"]
