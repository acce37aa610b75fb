"""The JSON Schema (2020-12) of a form's records, generated from its compiled definition.

One schema builder per field class. `mode` is "create" (required fields listed, computed ones
read-only), "update" (a partial document: nothing required) or "read" (what the API returns,
system columns included). The server's validation stays the authority: conditional rules
(visible_if, required_if, custom validations) are not expressed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from engine.forms import fields as f
from engine.forms.compiler import CompiledForm
from engine.forms.values import text_limit
from engine.forms.values._composite import ADDRESS_LIMITS, MAX_ID
from engine.labels import label_text

Mode = Literal["create", "update", "read"]
Schema = dict[str, Any]
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TIME_PATTERN = r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$"
_OPTION_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
SYSTEM_PROPERTIES: Schema = {
    "id": {"type": "integer", "minimum": 1, "readOnly": True},
    "version": {"type": "integer", "minimum": 1, "readOnly": True},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"type": ["integer", "null"], "readOnly": True},
    "updated_at": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
    "updated_by": {"type": ["integer", "null"], "readOnly": True},
    "owner_id": {"type": ["integer", "null"], "readOnly": True},
}


class _Builder:
    """Field schemas for one form and mode; option lists come from `CompiledForm.options`."""

    def __init__(self, form: CompiledForm, mode: Mode) -> None:
        self.form = form
        self.mode = mode

    def field(self, item: Any, owner: str | None = None) -> Schema | None:
        build = _BUILDERS.get(type(item))
        if build is None:
            return None
        schema = build(self, item, owner)
        if item.label is not None:
            schema["title"] = label_text(item.label)
        if isinstance(item, _COMPUTED):
            schema["readOnly"] = True
        return schema

    def options(self, item: Any, owner: str | None) -> Schema:
        name = item.key if owner is None else f"{owner}/{item.key}"
        options = self.form.options.get(name)
        if options is None:
            return {"type": "string", "pattern": _OPTION_KEY_PATTERN}
        keys = [key for key, opt in options.items() if self.mode == "read" or not opt.retired]
        return {"type": "string", "enum": keys}


def _nullable(schema: Schema) -> Schema:
    """`schema` or null; every field may be blank (required is checked by the server)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _text(b: _Builder, item: Any, owner: str | None) -> Schema:
    schema: Schema = {"type": "string", "maxLength": text_limit(item)}
    if getattr(item, "min_length", None):
        schema["minLength"] = item.min_length
    fmt = _TEXT_FORMATS.get(type(item))
    if fmt is not None:
        schema["format"] = fmt
    return _nullable(schema)


_TEXT_FORMATS: dict[type, str] = {f.EmailField: "email", f.UrlField: "uri"}


def _number(b: _Builder, item: Any, owner: str | None) -> Schema:
    schema: Schema = {"type": "number"}
    if getattr(item, "min", None) is not None:
        schema["minimum"] = item.min
    if getattr(item, "max", None) is not None:
        schema["maximum"] = item.max
    if isinstance(item, f.PercentField):
        schema.setdefault("minimum", -99999.9999)
        schema.setdefault("maximum", 99999.9999)
    return _nullable(schema)


def _rating(b: _Builder, item: f.RatingField, owner: str | None) -> Schema:
    return _nullable({"type": "integer", "minimum": 1, "maximum": item.max})


def _plain(kind: str, fmt: str | None = None) -> Callable[[_Builder, Any, str | None], Schema]:
    def build(b: _Builder, item: Any, owner: str | None) -> Schema:
        schema: Schema = {"type": kind}
        if fmt is not None:
            schema["format"] = fmt
        return _nullable(schema)

    return build


def _time(b: _Builder, item: Any, owner: str | None) -> Schema:
    return _nullable({"type": "string", "pattern": _TIME_PATTERN})


def _date_range(b: _Builder, item: Any, owner: str | None) -> Schema:
    date = {"type": "string", "format": "date"}
    return _nullable(_object({"start": date, "end": date}, ["start", "end"]))


def _object(properties: Schema, required: list[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _choice(b: _Builder, item: Any, owner: str | None) -> Schema:
    return _nullable(b.options(item, owner))


def _multiselect(b: _Builder, item: f.MultiselectField, owner: str | None) -> Schema:
    schema: Schema = {"type": "array", "items": b.options(item, owner)}
    if item.min_items is not None:
        schema["minItems"] = item.min_items
    if item.max_items is not None:
        schema["maxItems"] = item.max_items
    return _nullable(schema)


def _address(b: _Builder, item: f.AddressField, owner: str | None) -> Schema:
    parts: Schema = {
        p: {"type": ["string", "null"], "maxLength": ADDRESS_LIMITS[p]} for p in item.parts
    }
    return _nullable(_object(parts, []))


def _location(b: _Builder, item: f.LocationField, owner: str | None) -> Schema:
    parts: Schema = {
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
    }
    if item.accuracy:
        upper = item.max_accuracy_m if item.max_accuracy_m is not None else 1e7
        parts["accuracy"] = {"type": ["number", "null"], "minimum": 0, "maximum": upper}
    return _nullable(_object(parts, ["lng", "lat"]))


def _files(b: _Builder, item: Any, owner: str | None) -> Schema:
    ref = _object(
        {
            "id": {"type": "string", "pattern": r"^[A-Za-z0-9_\-]{1,128}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "size": {"type": "integer", "minimum": 0},
            "content_type": {"type": "string"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        ["id", "name", "size", "content_type", "sha256"],
    )
    if item.max_size_mb is not None:
        ref["properties"]["size"]["maximum"] = int(item.max_size_mb * 1024 * 1024)
    limit = item.max_files or (1000 if item.multiple else 1)
    return _nullable({"type": "array", "items": ref, "maxItems": limit})


def _ids(b: _Builder, item: Any, owner: str | None) -> Schema:
    one: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    if item.multiple:
        return _nullable({"type": "array", "items": one})
    return _nullable(one)


def _subform(b: _Builder, item: f.SubformField, owner: str | None) -> Schema:
    properties: Schema = {"id": {"type": ["integer", "null"], "minimum": 1}}
    for child in item.fields:
        cell = b.field(child, item.key)
        if cell is not None:
            properties[child.key] = cell
    row: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    schema: Schema = {"type": "array", "items": row}
    if item.max_rows is not None:
        schema["maxItems"] = item.max_rows
    if item.min_rows is not None and b.mode != "update":
        schema["minItems"] = item.min_rows
    return _nullable(schema)


_RESULT_SCHEMAS: dict[str, Schema] = {
    "text": {"type": "string"},
    "number": {"type": "number"},
    "money": {"type": "number"},
    "percent": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "pattern": _TIME_PATTERN},
}


def _formula(b: _Builder, item: f.FormulaField, owner: str | None) -> Schema:
    return _nullable(dict(_RESULT_SCHEMAS[item.result_type]))


def _anything(b: _Builder, item: Any, owner: str | None) -> Schema:
    return {}


_COMPUTED = (f.FormulaField, f.LookupField, f.RollupField, f.AutonumberField)
_BUILDERS: dict[type, Callable[[_Builder, Any, str | None], Schema]] = {
    f.TextField: _text,
    f.TextareaField: _text,
    f.RichTextField: _text,
    f.EmailField: _text,
    f.PhoneField: _text,
    f.UrlField: _text,
    f.NumberField: _number,
    f.MoneyField: _number,
    f.PercentField: _number,
    f.RatingField: _rating,
    f.BooleanField: _plain("boolean"),
    f.DateField: _plain("string", "date"),
    f.DatetimeField: _plain("string", "date-time"),
    f.TimeField: _time,
    f.DateRangeField: _date_range,
    f.SelectField: _choice,
    f.CascadeField: _choice,
    f.MultiselectField: _multiselect,
    f.AddressField: _address,
    f.LocationField: _location,
    f.ImageField: _files,
    f.AttachmentField: _files,
    f.SignatureField: _files,
    f.UserField: _ids,
    f.DepartmentField: _ids,
    f.RelationField: _ids,
    f.SubformField: _subform,
    f.FormulaField: _formula,
    f.LookupField: _anything,
    f.RollupField: _plain("number"),
    f.AutonumberField: _plain("string"),
}


def record_json_schema(form: CompiledForm, *, mode: Mode = "read") -> Schema:
    """The JSON Schema of one record of `form` in `mode` ("create", "update" or "read")."""
    builder = _Builder(form, mode)
    properties: Schema = dict(SYSTEM_PROPERTIES) if mode == "read" else {}
    required: list[str] = []
    for key, item in form.fields.items():
        if getattr(item, "retired", False):
            continue
        field_schema = builder.field(item)
        if field_schema is None:
            continue
        properties[key] = field_schema
        if mode == "create" and _always_required(item):
            required.append(key)
    schema: Schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"{label_text(form.spec.label)} ({mode})",
        "type": "object",
        "properties": properties,
        "additionalProperties": mode == "read",
    }
    if required:
        schema["required"] = required
    return schema


def _always_required(item: Any) -> bool:
    """Required on every create: required, always visible and without a default."""
    return (
        bool(getattr(item, "required", False))
        and item.visible_if is None
        and getattr(item, "default", None) is None
        and getattr(item, "default_expr", None) is None
    )


def record_schemas(form: CompiledForm) -> Mapping[str, Schema]:
    """The three schemas by mode, for an OpenAPI document's components."""
    return {mode: record_json_schema(form, mode=mode) for mode in ("create", "update", "read")}


__all__ = ["JSON_SCHEMA_DIALECT", "SYSTEM_PROPERTIES", "record_json_schema", "record_schemas"]
