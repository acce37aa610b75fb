"""Canonical output of definitions and bundles: stable text that diffs cleanly in git.

A definition is dumped as its model's JSON form without default values, keys in model field
order. Two things are kept even when they equal their defaults, because reading the file
back needs them: `schema_version` at the top, and every tag of a tagged union (a field typed
as a single-valued Literal, i.e. `type`), which is placed right after `key`.
"""

from __future__ import annotations

import hashlib
import io
import json
import typing
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from engine.bundles._yaml import dump_yaml
from engine.bundles.bundle import Bundle

Format = Literal["yaml", "json"]
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def _is_tag(annotation: Any) -> bool:
    """A single-valued Literal: the tag of a union member, kept even when it is the default."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return typing.get_origin(annotation) is Literal and len(typing.get_args(annotation)) == 1


def _restore(value: Any, dumped: Any, top: bool = False) -> Any:
    """Walk the model beside its dump, re-adding kept fields and fixing key order."""
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return _restore_model(value, dumped, top)
    if isinstance(value, list | tuple) and isinstance(dumped, list):
        return [_restore(v, d) for v, d in zip(value, dumped, strict=False)]
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {k: _restore(value.get(k), d) for k, d in dumped.items()}
    return dumped


def _restore_model(model: BaseModel, dumped: dict[str, Any], top: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        alias = info.serialization_alias or info.alias or name
        value = getattr(model, name)
        if _is_tag(info.annotation):
            tags[alias] = to_jsonable_python(value)
        elif alias in dumped:
            out[alias] = _restore(value, dumped[alias])
        elif top and name == "schema_version":
            out[alias] = to_jsonable_python(value)
    out.update((k, v) for k, v in dumped.items() if k not in out and k not in tags)
    return _place_tags(out, tags)


def _place_tags(out: dict[str, Any], tags: dict[str, Any]) -> dict[str, Any]:
    """Tags go right after `key` (or first), so `- key: x / type: text` reads naturally."""
    if not tags:
        return out
    items = list(out.items())
    at = next((i + 1 for i, (k, _) in enumerate(items) if k == "key"), 0)
    return dict(items[:at] + list(tags.items()) + items[at:])


def canonical_definition(spec: BaseModel) -> dict[str, Any]:
    """The definition as plain JSON data, without defaults, in model field order."""
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return dict(_restore(spec, dumped, top=True))


def definition_digest(spec: BaseModel) -> str:
    """sha256 of the canonical JSON (keys sorted): equal digests mean equal definitions."""
    text = json.dumps(
        canonical_definition(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _render(data: dict[str, Any], fmt: Format) -> bytes:
    if fmt == "json":
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return dump_yaml(data).encode("utf-8")


def render_bundle(bundle: Bundle, *, fmt: Format = "yaml") -> dict[str, bytes]:
    """Every file of the canonical bundle, path → bytes, paths sorted."""
    if fmt not in ("yaml", "json"):
        raise ValueError(f"unknown format {fmt!r}: use 'yaml' or 'json'")
    files = {f"bundle.{fmt}": _render(canonical_definition(bundle.manifest), fmt)}
    for kind, key, spec in bundle.iter_definitions():
        files[f"{kind}/{key}.{fmt}"] = _render(canonical_definition(spec), fmt)
    files.update(bundle.files)
    return dict(sorted(files.items()))


def zip_bundle(bundle: Bundle, *, fmt: Format = "yaml") -> bytes:
    """The canonical bundle as zip bytes: sorted members, fixed timestamps and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in render_bundle(bundle, fmt=fmt).items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def dump_bundle(bundle: Bundle, target: Path, *, fmt: Format = "yaml") -> None:
    """Write the canonical bundle to a folder, or to a zip file when `target` ends in `.zip`.

    Files already in a target folder are overwritten when the bundle has the same path and
    left alone otherwise; dump into an empty folder for an exact copy.
    """
    target = Path(target)
    if target.suffix == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(zip_bundle(bundle, fmt=fmt))
        return
    for name, data in render_bundle(bundle, fmt=fmt).items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


__all__ = [
    "Format",
    "canonical_definition",
    "definition_digest",
    "dump_bundle",
    "render_bundle",
    "zip_bundle",
]
