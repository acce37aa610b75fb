"""Pydantic `ValidationError`s turned into `Problem`s with JSON pointers, codes and hints.

Pydantic's `loc` mixes real keys with labels it inserts itself (the tag of a discriminated
union, the member name of a plain union). Walking the loc alongside the input data tells them
apart: a segment that is not in the data is a label and is dropped.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.bundles._pointer import to_pointer
from engine.errors import Problem

_CODES = {
    "extra_forbidden": "bundle.unknown-key",
    "union_tag_invalid": "bundle.unknown-type",
    "union_tag_not_found": "bundle.missing-key",
    "missing": "bundle.missing-key",
}


def _code(error_type: str) -> str:
    """Our code for a pydantic error type; validators' own `<area>.<name>` codes pass through."""
    if error_type in _CODES:
        return _CODES[error_type]
    return error_type if "." in error_type else "bundle.invalid-value"


def _real_segments(loc: Sequence[int | str], data: Any, error_type: str) -> list[int | str]:
    """The loc segments that exist in `data` (plus a final missing key)."""
    segments: list[int | str] = []
    current = data
    for position, segment in enumerate(loc):
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and isinstance(segment, int) and 0 <= segment < len(current):
            current = current[segment]
        elif position == len(loc) - 1 and error_type == "missing":
            pass
        else:
            continue
        segments.append(segment)
    return segments


def _strip_quotes(text: str) -> str:
    return text.strip().strip("'\"")


def _tags(details: ErrorDetails) -> list[str]:
    expected = str(details.get("ctx", {}).get("expected_tags", ""))
    return [_strip_quotes(t) for t in expected.split(",") if t.strip()]


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete candidate types behind Annotated/Optional/Union/list/dict wrappers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _field_type(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return field.annotation
    return None


def _item_type(container: Any, segment: int | str) -> Any:
    """The type of one item of list[X], tuple[X, ...], tuple[A, B] or dict[K, V]."""
    origin, args = typing.get_origin(container), typing.get_args(container)
    if origin not in (list, tuple, dict, set, frozenset) or not args:
        return None
    if origin is tuple and args[-1] is not Ellipsis:
        return args[segment] if isinstance(segment, int) and segment < len(args) else None
    return args[0] if origin is not dict else args[-1]


def _pick_model(candidates: list[Any], data: Any) -> type[BaseModel] | None:
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(models) > 1 and isinstance(data, dict) and "type" in data:
        for model in models:
            tag = _field_type(model, "type")
            if typing.get_origin(tag) is typing.Literal and data["type"] in typing.get_args(tag):
                return model
    return models[0] if len(models) == 1 else None


def model_at(
    root: type[BaseModel], segments: Sequence[int | str], data: Any
) -> type[BaseModel] | None:
    """The model class that validates the object at `segments` inside `data`, if one does."""
    candidates: list[Any] = [root]
    current = data
    for segment in segments:
        model = _pick_model(candidates, current)
        if model is not None and isinstance(segment, str):
            candidates = _unwrap(_field_type(model, segment))
        else:
            candidates = [arg for c in candidates for arg in _unwrap(_item_type(c, segment))]
        try:
            current = current[segment]
        except (KeyError, IndexError, TypeError):
            current = None
    return _pick_model(candidates, current)


def _allowed_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _closest(word: str, choices: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _hint(
    details: ErrorDetails, root: type[BaseModel], segments: list[int | str], data: Any
) -> str | None:
    kind = details["type"]
    if kind == "union_tag_invalid":
        tags = _tags(details)
        tag = _strip_quotes(str(details.get("ctx", {}).get("tag", "")))
        guess = _closest(tag, tags)
        listed = ", ".join(tags)
        return f"did you mean {guess!r}? allowed: {listed}" if guess else f"allowed: {listed}"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model_at(root, segments[:-1], data))
        guess = _closest(str(segments[-1]), allowed) if segments else None
        if guess:
            return f"did you mean {guess!r}?"
        return f"allowed keys: {', '.join(allowed)}" if allowed else None
    if kind in ("union_tag_not_found", "missing"):
        return "add this key"
    if kind == "string_type" and isinstance(details.get("input"), int | float | bool):
        return "quote the value: YAML reads it as a number or boolean"
    expected = details.get("ctx", {}).get("expected")
    return f"expected {expected}" if expected else None


def _to_problem(details: ErrorDetails, root: type[BaseModel], data: Any) -> Problem:
    kind = details["type"]
    segments = _real_segments(details["loc"], data, kind)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = _strip_quotes(str(details.get("ctx", {}).get("discriminator", "type")))
        segments.append(discriminator)
    message = details["msg"]
    if kind == "union_tag_invalid":
        message = f"unknown type {_strip_quotes(str(details.get('ctx', {}).get('tag', '')))!r}"
    return Problem(
        code=_code(kind),
        path=to_pointer(segments),
        message=message,
        hint=_hint(details, root, segments, data),
    )


def validation_problems(err: ValidationError, root: type[BaseModel], data: Any) -> list[Problem]:
    """One problem per distinct (path, code); union members failing alike are reported once."""
    problems: dict[tuple[str, str], Problem] = {}
    for details in err.errors(include_url=False):
        problem = _to_problem(details, root, data)
        problems.setdefault((problem.path, problem.code), problem)
    return list(problems.values())


__all__ = ["model_at", "validation_problems"]
