"""Composite codecs: address, location, file references and ids (user, department, relation).

Address → `{province, city, district, detail}` (the field's parts, trimmed text). Location →
`{lng, lat[, accuracy]}` as floats (the columns are floats). Files → a list of
`{id, name, size, content_type, sha256}` even when the field takes one file. Ids are positive
ints; multiple fields take a list (order kept, repeats dropped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.forms import fields as f
from engine.forms.values._base import (
    Coercion,
    InvalidValue,
    is_blank_input,
    register,
    same,
    wrong_type,
)
from engine.forms.values._numbers import read_decimal

ADDRESS_LIMITS = {"province": 64, "city": 64, "district": 64, "detail": 2000}
MAX_ID = 2**63 - 1
MAX_IDS = 10_000
MAX_FILES = 1000
_FILE_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/[a-z0-9][a-z0-9!#$&^_.+\-]*")
_ID_SEPARATORS = re.compile(r"[,;\s]+")


def _mapping(raw: Any, parts: tuple[str, ...], expected: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise wrong_type(expected, raw)
    for name in raw:
        if name not in parts:
            raise InvalidValue("submission.unknown-field", f"no part {name!r}", suffix=str(name))
    return raw


def _address(field: f.AddressField, raw: Any, run: Coercion) -> dict[str, str | None] | None:
    if is_blank_input(raw):
        return None
    given = _mapping(raw, field.parts, "an address {province, city, district, detail}")
    out: dict[str, str | None] = {}
    for part in field.parts:
        value = given.get(part)
        if value is not None and not isinstance(value, str):
            raise InvalidValue("submission.wrong-type", "expected text", suffix=part)
        text = value.strip() if value else None
        if text and len(text) > ADDRESS_LIMITS[part]:
            limit = ADDRESS_LIMITS[part]
            raise InvalidValue("submission.too-long", f"at most {limit} characters", suffix=part)
        out[part] = text or None
    return out if any(v is not None for v in out.values()) else None


def _coordinate(raw: Any, run: Coercion, name: str, limit: float) -> float | None:
    try:
        value = read_decimal(raw, run)
    except InvalidValue as err:
        raise InvalidValue(err.code, err.message, suffix=name) from err
    if value is None:
        return None
    if not -limit <= value <= limit:
        raise InvalidValue("submission.out-of-range", f"{name} is within ±{limit:g}", suffix=name)
    return float(value)


def _location(field: f.LocationField, raw: Any, run: Coercion) -> dict[str, float | None] | None:
    if is_blank_input(raw):
        return None
    parts = ("lng", "lat", "accuracy") if field.accuracy else ("lng", "lat")
    given = _mapping(raw, parts, "a location {lng, lat}")
    lng = _coordinate(given.get("lng"), run, "lng", 180)
    lat = _coordinate(given.get("lat"), run, "lat", 90)
    if lng is None or lat is None:
        missing = "lng" if lng is None else "lat"
        raise InvalidValue("submission.required", "a location needs lng and lat", suffix=missing)
    out: dict[str, float | None] = {"lng": lng, "lat": lat}
    if field.accuracy:
        out["accuracy"] = _accuracy(field, given.get("accuracy"), run)
    return out


def _accuracy(field: f.LocationField, raw: Any, run: Coercion) -> float | None:
    value = _coordinate(raw, run, "accuracy", 1e7)
    if value is None:
        return None
    if value < 0 or (field.max_accuracy_m is not None and value > field.max_accuracy_m):
        limit = field.max_accuracy_m or 1e7
        raise InvalidValue(
            "submission.out-of-range", f"accuracy is 0 to {limit:g} m", suffix="accuracy"
        )
    return value


# --- files ---------------------------------------------------------------------------------

_FILE_KEYS = ("id", "name", "size", "content_type", "sha256")


def _file_ref(field: Any, raw: Any) -> dict[str, Any]:
    ref = _mapping(raw, _FILE_KEYS, "a file {id, name, size, content_type, sha256}")
    missing = [key for key in _FILE_KEYS if ref.get(key) is None]
    if missing:
        raise InvalidValue("submission.required", f"a file needs {missing[0]}", suffix=missing[0])
    _check_file_text(ref)
    size = ref["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        message = "size is a whole number of bytes"
        raise InvalidValue("submission.wrong-type", message, suffix="size")
    if field.max_size_mb is not None and size > field.max_size_mb * 1024 * 1024:
        limit = f"{field.max_size_mb:g}"
        raise InvalidValue("submission.file-too-large", f"files up to {limit} MB", suffix="size")
    if field.accept and not _accepted(field.accept, ref["name"], ref["content_type"]):
        raise InvalidValue("submission.file-type", "this type of file is not accepted")
    return {key: ref[key] for key in _FILE_KEYS}


def _check_file_text(ref: Mapping[str, Any]) -> None:
    checks = (
        ("id", _FILE_ID, "a file id"),
        ("sha256", _SHA256, "a lower-case hex SHA-256"),
        ("content_type", _CONTENT_TYPE, "a media type"),
    )
    for key, pattern, what in checks:
        value = ref[key]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InvalidValue("submission.invalid-file", f"{key} is not {what}", suffix=key)
    name = ref["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
        raise InvalidValue("submission.invalid-file", "name is 1-255 characters", suffix="name")


def _accepted(accept: tuple[str, ...], name: str, content_type: str) -> bool:
    lowered = name.lower()
    for item in accept:
        if item.startswith("."):
            if lowered.endswith(item.lower()):
                return True
        elif item.endswith("/*"):
            if content_type.startswith(item[:-1]):
                return True
        elif content_type == item:
            return True
    return False


def _files(field: Any, raw: Any, run: Coercion) -> list[dict[str, Any]] | None:
    if is_blank_input(raw):
        return None
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list | tuple):
        raise wrong_type("a list of files", raw)
    limit = field.max_files or (MAX_FILES if field.multiple else 1)
    if len(items) > limit:
        raise InvalidValue("submission.too-many", f"at most {limit} file(s)")
    out = []
    for index, item in enumerate(items):
        try:
            out.append(_file_ref(field, item))
        except InvalidValue as err:
            suffix = f"{index}/{err.suffix}" if err.suffix else str(index)
            raise InvalidValue(err.code, err.message, suffix=suffix) from err
    return out


def _files_json(field: Any, value: Any) -> Any:
    return None if value is None else [dict(item) for item in value]


# --- ids -----------------------------------------------------------------------------------


def read_id(raw: Any, run: Coercion) -> int:
    """A positive record, user or department id."""
    if isinstance(raw, bool):
        raise wrong_type("an id", raw)
    if isinstance(raw, int):
        value = raw
    elif run.lenient and isinstance(raw, str | Decimal) and str(raw).strip().isdigit():
        value = int(str(raw).strip())
    else:
        raise wrong_type("an id", raw)
    if not 1 <= value <= MAX_ID:
        raise InvalidValue("submission.invalid-id", "an id is a positive whole number")
    return value


def _ids(field: Any, raw: Any, run: Coercion) -> int | list[int] | None:
    if is_blank_input(raw):
        return None
    if not field.multiple:
        return read_id(raw, run)
    if run.lenient and isinstance(raw, str):
        raw = [part for part in _ID_SEPARATORS.split(raw) if part]
    if not isinstance(raw, list | tuple):
        raise wrong_type("a list of ids", raw)
    if len(raw) > MAX_IDS:
        raise InvalidValue("submission.too-many", f"at most {MAX_IDS} ids")
    ids: dict[int, None] = {}
    for index, item in enumerate(raw):
        try:
            ids[read_id(item, run)] = None
        except InvalidValue as err:
            raise InvalidValue(err.code, err.message, suffix=str(index)) from err
    return list(ids)


def _ids_json(field: Any, value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


register(f.AddressField, coerce=_address, to_json=same)
register(f.LocationField, coerce=_location, to_json=same)
register(f.ImageField, f.AttachmentField, f.SignatureField, coerce=_files, to_json=_files_json)
register(f.UserField, f.DepartmentField, f.RelationField, coerce=_ids, to_json=_ids_json)
