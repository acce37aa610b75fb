"""One definition file: bytes → parsed YAML/JSON → validated model, with located problems."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.bundles._json import parse_json
from engine.bundles._pydantic import validation_problems
from engine.bundles._yaml import parse_yaml
from engine.bundles.limits import BundleLimits
from engine.errors import Problem

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_document(name: str, data: bytes, limits: BundleLimits) -> tuple[Any, list[Problem]]:
    """Decode and parse one YAML or JSON file (by suffix); problems come back located in `name`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        message = f"file is not UTF-8 (byte {err.start})"
        return None, [Problem("bundle.encoding", "", message, source=name)]
    parse = parse_json if name.endswith(".json") else parse_yaml
    value, problems = parse(text, limits)
    return value, [p.located(source=name) for p in problems]


def validate_document(
    model: type[ModelT], name: str, value: Any
) -> tuple[ModelT | None, list[Problem]]:
    """Validate parsed data against `model`; pydantic errors become located problems."""
    if not isinstance(value, dict):
        problem = Problem("bundle.not-a-mapping", "", "the file must hold a mapping of keys")
        return None, [problem.located(source=name)]
    try:
        return model.model_validate(value), []
    except ValidationError as err:
        return None, [p.located(source=name) for p in validation_problems(err, model, value)]


__all__ = ["parse_document", "validate_document"]
