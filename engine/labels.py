"""Translatable labels: a plain string or a mapping of language code to text."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]
Label = Annotated[
    str | dict[LanguageCode, str],
    Field(description="Text shown to users: a string, or {en: ..., zh: ...}"),
]


def label_text(label: str | dict[str, str], lang: str = "en") -> str:
    """The label in `lang`, falling back to English, then to any translation."""
    if isinstance(label, str):
        return label
    return label.get(lang) or label.get("en") or next(iter(label.values()), "")


__all__ = ["Label", "LanguageCode", "label_text"]
