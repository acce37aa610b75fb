"""Clean field values ↔ columns and result rows, and autonumber text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from engine.storage._record_layout import BACKREF, LINKS, PARTS, STORED, SUBFORM, RecordLayout, Slot

_NUMERIC_TYPES = frozenset({"number", "money", "percent"})
_SEQUENCE = re.compile(r"\{(#+)\}")
_DATE_TOKENS = {
    "YYYYMMDD": "%Y%m%d",
    "YYMMDD": "%y%m%d",
    "YYYYMM": "%Y%m",
    "YYMM": "%y%m",
    "YYYY": "%Y",
    "YY": "%y",
    "MM": "%m",
    "DD": "%d",
}
_DATE_TOKEN = re.compile(r"\{(" + "|".join(_DATE_TOKENS) + r")\}")
_PERIODS = {"never": "", "daily": "%Y%m%d", "monthly": "%Y%m", "yearly": "%Y"}


def to_columns(slot: Slot, value: Any) -> dict[str, Any]:
    """The column values that store `value` of a column or parts slot."""
    if slot.kind == STORED:
        return {slot.columns[0]: value}
    if slot.kind == PARTS:
        parts = value if isinstance(value, dict) else {}
        return {
            column: parts.get(part) for column, part in zip(slot.columns, slot.parts, strict=True)
        }
    return {}


def from_columns(slot: Slot, row: Any) -> Any:
    """The clean value of a column or parts slot read from a result row mapping."""
    if slot.kind == PARTS:
        parts = {part: row[column] for column, part in zip(slot.columns, slot.parts, strict=True)}
        if all(value is None for value in parts.values()):
            return None
        return {part: _number(slot, value) for part, value in parts.items()}
    return _number(slot, row[slot.columns[0]])


def _number(slot: Slot, value: Any) -> Any:
    """Numbers read back as their input's canonical type: Decimal for number fields, float
    for a location's parts (as `coerce` makes them, so re-reads compare equal and serialise)."""
    if not isinstance(value, float | Decimal):
        return value
    kind = str(slot.spec.type)
    if kind == "location":
        return float(value)
    if kind == "formula":
        kind = str(getattr(slot.spec, "result_type", ""))
    if isinstance(value, float) and kind in _NUMERIC_TYPES:
        return Decimal(repr(value))
    return value


def autonumber_period(reset: str, moment: datetime) -> str:
    """The counter period of a moment: "" for never, else its day, month or year."""
    pattern = _PERIODS.get(reset, "")
    return moment.strftime(pattern) if pattern else ""


def format_autonumber(pattern: str, moment: datetime, number: int) -> str:
    """`WO-{YYYYMM}-{####}` → `WO-202611-0042`; a number wider than the token is not cut."""
    dated = _DATE_TOKEN.sub(lambda m: moment.strftime(_DATE_TOKENS[m.group(1)]), pattern)
    return _SEQUENCE.sub(lambda m: str(number).zfill(len(m.group(1))), dated, count=1)


def written_children(layout: RecordLayout, values: Mapping[str, Any]) -> dict[str, Any]:
    """Child values of a record just inserted with `values`, as a read would return them.

    Subforms with computed row fields are left out (they need the database), and so is
    nothing else: a new record has no back references yet.
    """
    out: dict[str, Any] = {}
    for slot in layout.slots:
        if slot.kind == BACKREF:
            out[slot.key] = []
        elif slot.kind == LINKS:
            out[slot.key] = list(dict.fromkeys(values.get(slot.key) or []))
        elif slot.kind == SUBFORM and all(row.kind in (STORED, PARTS) for row in slot.rows):
            rows = values.get(slot.key) or []
            out[slot.key] = [{child.key: row.get(child.key) for child in slot.rows} for row in rows]
    return out


def labelled(computed: Mapping[str, Any]) -> list[sa.Label[Any]]:
    labels: list[sa.Label[Any]] = []
    for key, value in computed.items():
        if isinstance(value, dict):
            labels += [column.label(f"_c_{key}__{part}") for part, column in value.items()]
        else:
            labels.append(value.label(f"_c_{key}"))
    return labels


def row_values(
    slots: tuple[Slot, ...], row: Mapping[str, Any], computed: Mapping[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, column, numbers in _plan(slots):
        if column is None:
            slot = numbers
            values[key] = from_columns(slot, row)
            continue
        value = row[column]
        if numbers is not None and isinstance(value, float | Decimal):
            value = numbers(value)
        values[key] = value
    values.update(computed_values(computed, row))
    return values


_Step = tuple[str, str | None, Any]
_PLANS: dict[int, tuple[tuple[Slot, ...], list[_Step]]] = {}


def _plan(slots: tuple[Slot, ...]) -> list[_Step]:
    """How to read each stored slot of a row, worked out once per layout (reads are hot):
    `(key, column, number reader or None)`, or `(key, None, slot)` for composite fields."""
    found = _PLANS.get(id(slots))
    if found is not None and found[0] is slots:
        return found[1]
    plan: list[_Step] = []
    for slot in slots:
        if slot.kind == STORED:
            plan.append((slot.key, slot.columns[0], _number_reader(slot)))
        elif slot.kind == PARTS:
            plan.append((slot.key, None, slot))
    if len(_PLANS) > 512:
        _PLANS.clear()
    _PLANS[id(slots)] = (slots, plan)  # holding `slots` keeps its id from being reused
    return plan


def _number_reader(slot: Slot) -> Any:
    """`_number` for one slot: None when the slot's values are never converted."""
    kind = str(slot.spec.type)
    if kind == "location":
        return float
    if kind == "formula":
        kind = str(getattr(slot.spec, "result_type", ""))
    if kind in _NUMERIC_TYPES:
        return _float_to_decimal
    return None


def _float_to_decimal(value: float | Decimal) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else value


def computed_values(computed: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The values of labelled computed columns (dicts of parts for composite fields)."""
    values: dict[str, Any] = {}
    for key, value in computed.items():
        if isinstance(value, dict):
            parts = {part: plain(row[f"_c_{key}__{part}"]) for part in value}
            has_any = any(v is not None for v in parts.values())
            values[key] = parts if has_any else None
        else:
            values[key] = plain(row[f"_c_{key}"])
    return values


def plain(value: Any) -> Any:
    """Floats from the database as Decimal, the canonical number type."""
    return Decimal(repr(value)) if isinstance(value, float) else value


__all__ = [
    "autonumber_period",
    "computed_values",
    "format_autonumber",
    "from_columns",
    "labelled",
    "plain",
    "row_values",
    "to_columns",
    "written_children",
]
