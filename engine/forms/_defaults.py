"""Checks that a field's constant `default` is a value the field can hold.

One small checker per field class; each returns an error message, or None when the value fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from engine.forms import fields as f

DefaultCheck = Callable[[Any, Any, Collection[str] | None], str | None]


def _text(field: Any, value: Any, options: Collection[str] | None) -> str | None:
    if not isinstance(value, str):
        return "a text default must be a string"
    max_length = getattr(field, "max_length", None)
    if max_length is not None and len(value) > max_length:
        return f"the default is longer than max_length {max_length}"
    return None


def _number(field: Any, value: Any, options: Collection[str] | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "a numeric default must be a number"
    low, high = getattr(field, "min", None), getattr(field, "max", None)
    if (low is not None and value < low) or (high is not None and value > high):
        return "the default is outside min/max"
    return None


def _boolean(field: Any, value: Any, options: Collection[str] | None) -> str | None:
    return None if isinstance(value, bool) else "a boolean default must be true or false"


def _iso(parse: Callable[[str], object], kind: str) -> DefaultCheck:
    def check(field: Any, value: Any, options: Collection[str] | None) -> str | None:
        try:
            parse(value)
        except (TypeError, ValueError):
            return f"a {kind} default must be an ISO {kind} string"
        return None

    return check


def _choice(field: Any, value: Any, options: Collection[str] | None) -> str | None:
    if not isinstance(value, str):
        return "a choice default must be an option key"
    if options is not None and value not in options:
        return f"{value!r} is not one of the options"
    return None


def _choices(field: Any, value: Any, options: Collection[str] | None) -> str | None:
    if not isinstance(value, list):
        return "a multiselect default must be a list of option keys"
    for item in value:
        problem = _choice(field, item, options)
        if problem is not None:
            return problem
    return None


DEFAULT_CHECKS: dict[type, DefaultCheck] = {
    f.TextField: _text,
    f.TextareaField: _text,
    f.RichTextField: _text,
    f.EmailField: _text,
    f.PhoneField: _text,
    f.UrlField: _text,
    f.NumberField: _number,
    f.MoneyField: _number,
    f.PercentField: _number,
    f.RatingField: _number,
    f.BooleanField: _boolean,
    f.DateField: _iso(dt.date.fromisoformat, "date"),
    f.DatetimeField: _iso(dt.datetime.fromisoformat, "datetime"),
    f.TimeField: _iso(dt.time.fromisoformat, "time"),
    f.SelectField: _choice,
    f.CascadeField: _choice,
    f.MultiselectField: _choices,
}


def default_problem(field: Any, options: Collection[str] | None) -> str | None:
    """Why `field.default` does not fit the field, or None (also for fields without a check)."""
    value = getattr(field, "default", None)
    check = DEFAULT_CHECKS.get(type(field))
    if value is None or check is None:
        return None
    return check(field, value, options)
