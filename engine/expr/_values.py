"""Runtime value rules of the Python evaluator: numbers as Decimal, blanks, ASCII case folding."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.expr._calendar import as_datetime

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UNFOLD = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
TRIM_CHARS = " \t\r\n"


def to_number(value: Any) -> Decimal | None:
    """A number as Decimal (floats through their shortest repr); blank stays None."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def to_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected text, got {type(value).__name__}")


def to_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"expected TRUE or FALSE, got {type(value).__name__}")


def to_temporal(value: Any) -> date | None:
    """A date or (UTC) datetime; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_datetime(value)
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a date, got {type(value).__name__}")


def is_blank(value: Any) -> bool:
    """ISBLANK: None, empty text and an empty list are blank."""
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def lower_ascii(text: str) -> str:
    """Lower-case A-Z only: the rule every evaluator (SQLite's lower() included) can honour."""
    return text.translate(_FOLD)


def upper_ascii(text: str) -> str:
    return text.translate(_UNFOLD)


def normalise(value: Any) -> Any:
    """A value in evaluator form: numbers as Decimal, datetimes in UTC."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return to_number(value)
    if isinstance(value, date):
        return to_temporal(value)
    if isinstance(value, list | tuple):
        return tuple(normalise(v) for v in value)
    return value


def comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """Promote a date to a datetime when compared with one; reject mixed kinds."""
    if isinstance(a, date) and isinstance(b, date):
        if isinstance(a, datetime) != isinstance(b, datetime):
            return as_datetime(a), as_datetime(b)
        return a, b
    if isinstance(a, bool) != isinstance(b, bool) or (
        isinstance(a, Decimal) != isinstance(b, Decimal)
    ):
        raise TypeError(f"cannot compare {type(a).__name__} with {type(b).__name__}")
    if type(a) is not type(b) and not isinstance(a, Decimal):
        raise TypeError(f"cannot compare {type(a).__name__} with {type(b).__name__}")
    return a, b


def equal(a: Any, b: Any) -> bool:
    """Null-safe equality: blank equals blank and nothing else."""
    if a is None or b is None:
        return a is None and b is None
    x, y = comparable(a, b)
    return bool(x == y)


def compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1; None when either side is blank."""
    if a is None or b is None:
        return None
    x, y = comparable(a, b)
    return int(x > y) - int(x < y)


__all__ = [
    "TRIM_CHARS",
    "comparable",
    "compare",
    "equal",
    "is_blank",
    "lower_ascii",
    "normalise",
    "to_bool",
    "to_number",
    "to_temporal",
    "to_text",
    "upper_ascii",
]
