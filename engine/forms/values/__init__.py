"""Field values: one codec per field class turns input into canonical Python values and back.

`coerce` reads API JSON, or CSV text with `lenient=True`; `to_json` writes a canonical value
as JSON. The canonical forms are listed in docs/records.md ("Values and validation").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import FieldError, SubmissionError
from engine.forms.fields import Option
from engine.forms.values import _choices, _composite, _numbers, _temporal, _text  # noqa: F401
from engine.forms.values._base import CODECS, Codec, Coercion, InvalidValue
from engine.forms.values._rows import coerce_cell, json_value
from engine.forms.values._text import REGEX_MAX_INPUT, TEXT_CAPS, text_limit


def codec_for(field: Any) -> Codec:
    """The codec of a value field; layout-only fields (section, divider, ...) have none."""
    codec = CODECS.get(type(field))
    if codec is None:
        raise TypeError(f"field type {type(field).__name__} holds no value")
    return codec


def has_value(field: Any) -> bool:
    """Whether the field holds a value (computed ones included); layout fields do not."""
    return type(field) in CODECS


def is_computed(field: Any) -> bool:
    """Formula, lookup, rollup and autonumber fields: computed, never taken from input."""
    codec = CODECS.get(type(field))
    return codec is not None and codec.computed


def coerce(
    field: Any,
    raw: Any,
    *,
    loc: str,
    lenient: bool = False,
    options: Mapping[str, Mapping[str, Option]] | None = None,
    timezone: str = "UTC",
    current: Any = None,
) -> Any:
    """Input for `field` as its canonical value (None for blank).

    Args:
        loc: where the value sits in the submission (`qty`, `items/2/qty`); errors use it.
        lenient: text sources (CSV): "是"/"否"/"1"/"0" booleans, option labels, "a,b" lists.
        options: `CompiledForm.options`, needed for choices from shared option sets.
        timezone: the zone of datetimes given without an offset, unless the field names one.
        current: the stored value; a retired option it holds stays acceptable.

    Raises:
        SubmissionError: with one `FieldError` per problem (several for subform rows).
    """
    run = Coercion(loc, lenient, options, timezone, current)
    errors: list[FieldError] = []
    if not has_value(field):
        _no_value(field, loc)
    value = coerce_cell(field, raw, run, errors)
    if errors:
        raise SubmissionError(errors)
    return value


def _no_value(field: Any, loc: str) -> None:
    message = f"{getattr(field, 'key', '?')!r} is a layout element and holds no value"
    raise SubmissionError([FieldError(loc, "submission.unknown-field", message)])


def to_json(field: Any, value: Any) -> Any:
    """A canonical value of `field` as JSON (numbers, ISO text, lists and objects)."""
    codec = CODECS.get(type(field))
    return json_value(value) if codec is None else codec.to_json(field, value)


def record_to_json(fields: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """A whole record as JSON; `fields` is `CompiledForm.fields` (other keys, such as system
    columns, are written by their Python type)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        item = fields.get(key)
        out[key] = to_json(item, value) if item is not None else json_value(value)
    return out


__all__ = [
    "CODECS",
    "REGEX_MAX_INPUT",
    "TEXT_CAPS",
    "Codec",
    "Coercion",
    "InvalidValue",
    "codec_for",
    "coerce",
    "has_value",
    "is_computed",
    "json_value",
    "record_to_json",
    "text_limit",
    "to_json",
]
