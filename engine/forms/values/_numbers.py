"""Numeric codecs: number, money and percent as `Decimal`; rating as `int`; boolean as `bool`.

Money is quantised to its decimals (default 2), number and percent to theirs when set, rounding
half up. NaN and infinities are refused; `true`/`false` are not numbers. In JSON a number is
written as an integer when it is whole, else as a float (at most 15 significant digits are kept
by the columns anyway).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from engine.forms import fields as f
from engine.forms.values._base import Coercion, InvalidValue, register, same, wrong_type

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,4})?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
MAX_NUMBER_TEXT = 64
# Largest magnitudes the columns hold: Numeric(18, d) and, without decimals, a float whose
# integers stay exact; percent is Numeric(9, 4).
MAX_MAGNITUDE = Decimal(10) ** 15
MAX_PERCENT = Decimal(10) ** 5
_LENIENT_TRUE = frozenset({"true", "1", "是", "yes", "y"})
_LENIENT_FALSE = frozenset({"false", "0", "否", "no", "n"})


def _decimal_from_text(text: str, run: Coercion, *, percent: bool) -> Decimal:
    if run.lenient:
        text = text.replace(" ", "")
        if percent and text.endswith("%"):
            text = text[:-1]
        if _GROUPED.fullmatch(text):  # thousands separators only, never a decimal comma
            text = text.replace(",", "")
    if len(text) > MAX_NUMBER_TEXT or not _NUMBER.fullmatch(text):
        raise InvalidValue("submission.invalid-number", "not a number")
    return Decimal(text)


def read_decimal(raw: Any, run: Coercion, *, percent: bool = False) -> Decimal | None:
    """Any numeric input as a finite Decimal; None for blank."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise wrong_type("a number", raw)
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    elif isinstance(raw, str):
        value = _decimal_from_text(raw.strip(), run, percent=percent)
    else:
        raise wrong_type("a number", raw)
    if not value.is_finite():
        raise InvalidValue("submission.not-finite", "NaN and infinity are not numbers")
    return value


def _decimals(field: Any) -> int | None:
    decimals = getattr(field, "decimals", None)
    if decimals is None and isinstance(field, f.MoneyField):
        return 2
    return decimals


def _bound(value: Decimal, field: Any) -> None:
    limit = MAX_PERCENT if isinstance(field, f.PercentField) else MAX_MAGNITUDE
    decimals = _decimals(field)
    if decimals is not None:
        limit = min(limit, Decimal(10) ** (18 - decimals))
    if abs(value) >= limit:
        raise InvalidValue("submission.out-of-range", f"the magnitude must stay below {limit:,}")
    low, high = getattr(field, "min", None), getattr(field, "max", None)
    if low is not None and value < Decimal(repr(low)):
        raise InvalidValue("submission.out-of-range", f"must be at least {low:g}")
    if high is not None and value > Decimal(repr(high)):
        raise InvalidValue("submission.out-of-range", f"must be at most {high:g}")


def _numeric(field: Any, raw: Any, run: Coercion) -> Decimal | None:
    value = read_decimal(raw, run, percent=isinstance(field, f.PercentField))
    if value is None:
        return None
    decimals = _decimals(field)
    try:
        if abs(value) < MAX_MAGNITUDE and decimals is not None:
            value = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except InvalidOperation as err:
        raise InvalidValue("submission.out-of-range", "the number is too large") from err
    _bound(value, field)
    return value


def number_to_json(field: Any, value: Any) -> int | float | None:
    """A Decimal as a JSON number: an int when whole, else a float."""
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _rating(field: f.RatingField, raw: Any, run: Coercion) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        value: Decimal | None = Decimal(raw)
    elif run.lenient:
        value = read_decimal(raw, run)
    elif raw is None:
        return None
    else:
        raise wrong_type("a whole number", raw)
    if value is None:
        return None
    if value != value.to_integral_value():
        raise InvalidValue("submission.invalid-number", "a rating is a whole number")
    if not 1 <= value <= field.max:
        raise InvalidValue("submission.out-of-range", f"a rating is from 1 to {field.max}")
    return int(value)


def _boolean(field: f.BooleanField, raw: Any, run: Coercion) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    if run.lenient and isinstance(raw, str):
        text = raw.strip().lower()
        if not text:
            return None
        if text in _LENIENT_TRUE:
            return True
        if text in _LENIENT_FALSE:
            return False
        raise InvalidValue("submission.invalid-boolean", "expected true or false")
    raise wrong_type("true or false", raw)


register(f.NumberField, f.MoneyField, f.PercentField, coerce=_numeric, to_json=number_to_json)
register(f.RatingField, coerce=_rating, to_json=same)
register(f.BooleanField, coerce=_boolean, to_json=same)
