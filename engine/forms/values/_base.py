"""The codec registry: one `Codec` per field class, and the state one coercion run shares.

A codec turns raw input (JSON, CSV text) into a field's canonical Python value and back to
JSON. Scalar codecs raise `InvalidValue`; `coerce` places it at the field's loc.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import FieldError
from engine.forms.fields import Option


class InvalidValue(ValueError):
    """One bad value: `code` and `message`, at `suffix` below the field's loc (e.g. `0/size`)."""

    def __init__(self, code: str, message: str, *, suffix: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.suffix = suffix


class InvalidValues(ValueError):
    """Several bad values inside one field (subform cells); each is already located."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid value(s)")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Coercion:
    """What a codec may need besides the field: where it is, and how strict to be.

    `options` is `CompiledForm.options` (choice options by field key, `subform/child` inside
    subforms); `owner` is the subform key while coercing its rows. `current` is the field's
    stored value, so a retired option already stored stays acceptable.
    """

    loc: str
    lenient: bool = False
    options: Mapping[str, Mapping[str, Option]] | None = None
    timezone: str = "UTC"
    current: Any = None
    owner: str | None = None

    def at(self, loc: str, *, current: Any = None, owner: str | None = None) -> Coercion:
        return Coercion(loc, self.lenient, self.options, self.timezone, current, owner)


CoerceFn = Callable[[Any, Any, Coercion], Any]
ToJsonFn = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class Codec:
    """How one field class reads input and writes JSON. `computed` fields take no input."""

    coerce: CoerceFn
    to_json: ToJsonFn
    computed: bool = False


CODECS: dict[type, Codec] = {}


def register(*classes: type, coerce: CoerceFn, to_json: ToJsonFn, computed: bool = False) -> None:
    """Register one codec for the field `classes`."""
    codec = Codec(coerce=coerce, to_json=to_json, computed=computed)
    for cls in classes:
        CODECS[cls] = codec


def wrong_type(expected: str, raw: Any) -> InvalidValue:
    return InvalidValue("submission.wrong-type", f"expected {expected}, got {type(raw).__name__}")


def is_blank_input(raw: Any) -> bool:
    """None, empty or whitespace-only text, and empty lists or mappings are blank input."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, list | tuple | dict):
        return not raw
    return False


def same(field: Any, value: Any) -> Any:
    """`to_json` of values that already are JSON (text, bool, int, plain objects)."""
    return value
