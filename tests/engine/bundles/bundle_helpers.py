"""Helpers for bundle tests: tiny spec models, bundles written to folders or zip bytes."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from engine.errors import DefinitionError, Problem
from engine.labels import Label
from engine.spec_base import Key, SpecModel

MANIFEST = "key: pack\nname: Pack\nversion: 1.0.0\nengine: '>=0.1'\n"


class TextItem(SpecModel):
    type: Literal["text"] = "text"
    key: Key
    max_length: int | None = None


class NumberItem(SpecModel):
    type: Literal["number"] = "number"
    key: Key
    minimum: float | None = None


Item = Annotated[TextItem | NumberItem, Field(discriminator="type")]


class ThingSpec(SpecModel):
    """A stand-in for a form: key, label, a tagged union list."""

    schema_version: int = 1
    key: Key
    label: Label
    items: tuple[Item, ...] = ()


class Widget(SpecModel):
    form: str
    options: dict[str, str] = {}


class LinkSpec(SpecModel):
    """A stand-in for a flow/dashboard: it names other definitions."""

    schema_version: int = 1
    key: Key
    label: Label
    form: Key | None = None
    widgets: tuple[Widget, ...] = ()
    payload: dict[str, str] = {}


TINY_KINDS: Mapping[str, type[SpecModel]] = {"forms": ThingSpec, "flows": LinkSpec}


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def zip_bytes(files: Mapping[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def problems_of(call: Callable[[], object]) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        call()
    return list(caught.value.problems)


def located(problems: list[Problem]) -> set[tuple[str, str, str]]:
    """(code, source, path) of each problem: what tests assert on (never messages)."""
    return {(p.code, p.source or "", p.path) for p in problems}


def set_encrypted_flag(data: bytes, name: str) -> bytes:
    """Mark member `name` as encrypted in the central directory (zipfile cannot write one)."""
    out = bytearray(data)
    start = out.find(b"PK\x01\x02")
    while start != -1:
        name_length = int.from_bytes(out[start + 28 : start + 30], "little")
        if out[start + 46 : start + 46 + name_length] == name.encode():
            out[start + 8] |= 0x1
        start = out.find(b"PK\x01\x02", start + 4)
    return bytes(out)
