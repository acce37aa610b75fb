"""Clean field values ↔ columns and child rows, and autonumber text."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.storage._record_layout import PARTS, STORED, Slot

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
    """Float columns (numbers without decimals, location) read back as Decimal, like input."""
    if not isinstance(value, float):
        return value
    kind = str(slot.spec.type)
    if kind == "formula":
        kind = str(getattr(slot.spec, "result_type", ""))
    if kind in _NUMERIC_TYPES or kind == "location":
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


__all__ = ["autonumber_period", "format_autonumber", "from_columns", "to_columns"]
