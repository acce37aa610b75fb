"""What the public pages and their JSON show: the link's fields, prefills and tracked values.

Labels come in the asker's language; values stay as JSON. Nothing here reads the database.
"""

from __future__ import annotations

from typing import Any

from engine.forms.record_schema import record_json_schema
from engine.labels import label_text
from engine.public._store import PublicLink
from engine.public.answers import AnswerForm
from engine.public.service import Prefilled, Tracked
from engine.public.spec import link_spec
from engine.registry import FormDefinition


def public_form(
    definition: FormDefinition, link: PublicLink, filled: Prefilled, *, lang: str = "en"
) -> dict[str, Any]:
    """The link as a form to fill: typed fields (with options), read-only prefills, a schema."""
    spec = link_spec(link.options)
    typed = [key for key in spec.fields if key not in filled.readonly]
    schema = dict(record_json_schema(definition.compiled, mode="create"))
    properties = schema.get("properties", {})
    schema["properties"] = {k: v for k, v in properties.items() if k in typed}
    schema["required"] = [k for k in schema.get("required", []) if k in typed]
    schema["additionalProperties"] = False
    return {
        "label": link.label or _form_label(definition, lang),
        "fields": [_field(definition, key, filled, lang) for key in typed],
        "prefilled": [
            {
                "key": key,
                "label": _label(definition, key, lang),
                "value": filled.values[key],
                "display": filled.display.get(key)
                or _display(definition, key, filled.values[key], lang),
            }
            for key in filled.values
            if key in filled.readonly
        ],
        "schema": schema,
    }


def tracked_view(tracked: Tracked, *, lang: str = "en") -> dict[str, Any]:
    """The submitter's view of its request: trackable fields only, with labels."""
    definition = tracked.definition
    return {
        "label": tracked.link.label or _form_label(definition, lang),
        "submitted_at": tracked.submitted_at.isoformat(),
        "fields": [
            {
                "key": key,
                "label": _label(definition, key, lang),
                "value": value,
                "display": _display(definition, key, value, lang),
            }
            for key, value in tracked.values.items()
        ],
    }


def answer_view(form: AnswerForm, *, lang: str = "en") -> dict[str, Any]:
    """An answer link as a form to fill: the offered fields with their current values."""
    filled = Prefilled(values=form.values, readonly=frozenset(), display={})
    fields = [_field(form.definition, key, filled, lang) for key in form.fields]
    for item in fields:
        item["required"] = item["key"] in form.required
    expires = form.link.expires_at
    return {
        "label": _form_label(form.definition, lang),
        "fields": fields,
        "prefilled": [],
        "expires_at": expires.isoformat() if expires else None,
    }


def _form_label(definition: FormDefinition, lang: str) -> str:
    spec = definition.compiled.spec
    return label_text(spec.label, lang) if spec.label else spec.key


def _label(definition: FormDefinition, key: str, lang: str) -> str:
    field = definition.compiled.fields.get(key)
    label = getattr(field, "label", None)
    return label_text(label, lang) if label else key


def _field(definition: FormDefinition, key: str, filled: Prefilled, lang: str) -> dict[str, Any]:
    field = definition.compiled.fields[key]
    out: dict[str, Any] = {
        "key": key,
        "type": str(field.type),
        "label": _label(definition, key, lang),
        "required": bool(getattr(field, "required", False)),
        "value": filled.values.get(key),
    }
    for name in ("max_length", "min_length"):
        if getattr(field, name, None) is not None:
            out[name] = getattr(field, name)
    options = definition.compiled.options.get(key)
    if options is not None:
        out["options"] = [
            {"key": k, "label": label_text(o.label, lang)}
            for k, o in options.items()
            if not o.retired
        ]
    return out


def _display(definition: FormDefinition, key: str, value: Any, lang: str) -> str:
    if value is None:
        return ""
    options = definition.compiled.options.get(key)
    if options is not None:
        keys = value if isinstance(value, list) else [value]
        return ", ".join(
            label_text(options[k].label, lang) if k in options else str(k) for k in keys
        )
    if isinstance(value, bool):
        return "✓" if value else "✗"
    return str(value)


__all__ = ["answer_view", "public_form", "tracked_view"]
