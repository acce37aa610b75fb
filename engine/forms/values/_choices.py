"""Choice codecs: select and cascade hold one option key, multiselect a list of keys.

A key must name an option of the field; a retired option is refused unless the record already
holds it. Lenient (CSV) input may give an option's label (any language) instead of its key, and
a multiselect as one text separated by commas or semicolons. Multiselect keeps the order given
and drops repeats. When a shared option set was not known at compile time, any well-formed key
is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.forms import fields as f
from engine.forms.values._base import Coercion, InvalidValue, register, same, wrong_type

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SEPARATORS = re.compile(r"[,;，；|]")
MAX_CHOICES = 1000


def field_options(field: Any, run: Coercion) -> Mapping[str, f.Option] | None:
    """The field's options by key, or None when its option set is unknown."""
    name = field.key if run.owner is None else f"{run.owner}/{field.key}"
    if run.options is not None and name in run.options:
        return run.options[name]
    if field.options:
        return {option.key: option for option in field.options}
    return None


def _by_label(options: Mapping[str, f.Option], text: str) -> str | None:
    folded = text.casefold()
    for key, option in options.items():
        labels = option.label.values() if isinstance(option.label, dict) else [option.label]
        if any(str(label).casefold() == folded for label in labels):
            return key
    return None


def _one(field: Any, raw: Any, run: Coercion, held: frozenset[str]) -> str:
    if not isinstance(raw, str):
        raise wrong_type("an option key", raw)
    key = raw.strip()
    options = field_options(field, run)
    if options is None:
        if not _KEY.fullmatch(key):
            raise InvalidValue("submission.unknown-option", f"{key[:64]!r} is not an option key")
        return key
    if key not in options and run.lenient:
        key = _by_label(options, key) or key
    option = options.get(key)
    if option is None:
        raise InvalidValue("submission.unknown-option", f"{key[:64]!r} is not one of the options")
    if option.retired and key not in held:
        raise InvalidValue("submission.retired-option", f"option {key!r} is no longer offered")
    return key


def _held(current: Any) -> frozenset[str]:
    if isinstance(current, str):
        return frozenset((current,))
    if isinstance(current, list | tuple):
        return frozenset(item for item in current if isinstance(item, str))
    return frozenset()


def _select(field: Any, raw: Any, run: Coercion) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return _one(field, raw, run, _held(run.current))


def _items(raw: Any, run: Coercion) -> list[Any]:
    if run.lenient and isinstance(raw, str):
        return [part for part in _SEPARATORS.split(raw) if part.strip()]
    if not isinstance(raw, list | tuple):
        raise wrong_type("a list of option keys", raw)
    if len(raw) > MAX_CHOICES:
        raise InvalidValue("submission.too-many", f"at most {MAX_CHOICES} items")
    return list(raw)


def _multiselect(field: f.MultiselectField, raw: Any, run: Coercion) -> list[str] | None:
    if raw is None:
        return None
    held = _held(run.current)
    keys: dict[str, None] = {}
    for index, item in enumerate(_items(raw, run)):
        try:
            keys[_one(field, item, run, held)] = None
        except InvalidValue as err:
            raise InvalidValue(err.code, err.message, suffix=str(index)) from err
    if not keys:
        return None
    if field.min_items is not None and len(keys) < field.min_items:
        raise InvalidValue("submission.too-few", f"choose at least {field.min_items}")
    if field.max_items is not None and len(keys) > field.max_items:
        raise InvalidValue("submission.too-many", f"choose at most {field.max_items}")
    return list(keys)


def _list_json(field: Any, value: Any) -> Any:
    return None if value is None else list(value)


register(f.SelectField, f.CascadeField, coerce=_select, to_json=same)
register(f.MultiselectField, coerce=_multiselect, to_json=_list_json)
