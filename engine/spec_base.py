"""The base every definition model shares: frozen, no unknown keys, stable snake_case keys."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
KEY_MAX_LENGTH = 30  # leaves room for `<app>__<form>__<field>` inside PostgreSQL's 63 bytes

Key = Annotated[
    str, StringConstraints(pattern=KEY_PATTERN, min_length=1, max_length=KEY_MAX_LENGTH)
]


class SpecModel(BaseModel):
    """Base of definition models: immutable, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


__all__ = ["KEY_MAX_LENGTH", "KEY_PATTERN", "Key", "SpecModel"]
