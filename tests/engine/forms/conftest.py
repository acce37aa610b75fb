"""Helpers for form tests: build specs from plain dicts and collect problem codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.errors import DefinitionError
from engine.forms import FormSpec, compile_form
from engine.schemas import validate_definition


@pytest.fixture
def shape_problems() -> Callable[[dict[str, Any]], list[tuple[str, str]]]:
    """(code, path) of every shape problem of a form document."""

    def run(data: dict[str, Any]) -> list[tuple[str, str]]:
        with pytest.raises(DefinitionError) as info:
            validate_definition("form", data)
        return [(p.code, p.path) for p in info.value.problems]

    return run


@pytest.fixture
def semantic_problems() -> Callable[..., list[tuple[str, str]]]:
    """(code, path) of every problem the compiler reports for a valid-shaped form."""

    def run(data: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
        spec = FormSpec.model_validate(data)
        with pytest.raises(DefinitionError) as info:
            compile_form(spec, **kwargs)
        return [(p.code, p.path) for p in info.value.problems]

    return run
