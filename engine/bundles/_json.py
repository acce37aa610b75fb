"""A guarded JSON reader for definition files: duplicate keys and NaN are problems."""

from __future__ import annotations

import json
from typing import Any

from engine.bundles._pointer import escape_segment
from engine.bundles.limits import BundleLimits
from engine.errors import Problem


class _DuplicateTracker:
    """`object_pairs_hook` that remembers which objects repeated which keys."""

    def __init__(self) -> None:
        self.found: list[tuple[dict[str, Any], str]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                self.found.append((obj, key))
            obj[key] = value
        return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _pointers(value: Any, prefix: str, out: dict[int, str]) -> None:
    """Map id(object) → JSON pointer for every object in the document."""
    if isinstance(value, dict):
        out[id(value)] = prefix
        for key, item in value.items():
            _pointers(item, f"{prefix}/{escape_segment(key)}", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _pointers(item, f"{prefix}/{index}", out)


def _depth(value: Any, limit: int) -> bool:
    """True when nesting stays within `limit`, checked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and level > limit:
            return False
        stack.extend((child, level + 1) for child in children)
    return True


def parse_json(text: str, limits: BundleLimits) -> tuple[Any, list[Problem]]:
    """Parse one JSON document; return its value and the problems found (value None if fatal)."""
    tracker = _DuplicateTracker()
    try:
        value = json.loads(text, object_pairs_hook=tracker, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        message = f"JSON syntax error at line {err.lineno}, column {err.colno}: {err.msg}"
        return None, [Problem("bundle.json-syntax", "", message)]
    except ValueError as err:
        return None, [Problem("bundle.json-syntax", "", str(err))]
    except RecursionError:
        return None, [_too_deep(limits)]
    if not _depth(value, limits.max_depth):
        return None, [_too_deep(limits)]
    if not tracker.found:
        return value, []
    where: dict[int, str] = {}
    _pointers(value, "", where)
    problems = [
        Problem(
            "bundle.duplicate-key",
            f"{where.get(id(obj), '')}/{escape_segment(key)}",
            f"key {key!r} appears more than once in the same object",
            hint="remove one of them: JSON readers disagree on which one wins",
        )
        for obj, key in tracker.found
    ]
    return None, problems


def _too_deep(limits: BundleLimits) -> Problem:
    return Problem("bundle.too-deep", "", f"nesting deeper than {limits.max_depth} levels")


__all__ = ["parse_json"]
