"""Records as JSON and the value comparisons the write paths share (history, change sets)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.identity.permissions import FormAccess
from engine.registry import FormDefinition
from engine.storage.form_records import (
    COMPUTED,
    LINKS,
    PARTS,
    STORED,
    SUBFORM,
    SYSTEM_FIELDS,
    RecordLayout,
    StoredRecord,
)

WRITABLE_KINDS = (STORED, PARTS, SUBFORM, LINKS)
_AS_IS = frozenset((str, int, bool, type(None)))


def record_to_json(
    definition: FormDefinition, record: StoredRecord, *, access: FormAccess | None = None
) -> dict[str, Any]:
    """A record as JSON: system fields under their own names, then every field's value.

    The one shape of a record: GET, writes, lists and kanban columns all serialise through it
    (timestamps as `2026-01-02T03:04:05Z`, lookups, rollups, subform rows, relation ids).

    With `access`, the fields hidden from that reader are left out, and lookups of related
    records not checked against the reader's scope of the target form are null
    (`access.scoped_lookups`, see `engine.forms.record_access.check_lookups`).
    """
    from engine.forms.values import json_value

    out: dict[str, Any] = {name: json_value(getattr(record, name)) for name in SYSTEM_FIELDS}
    unchecked = access.scoped_lookups if access is not None else {}
    for key, value in record.values.items():
        if access is not None and access.is_hidden(key):
            continue
        if key in unchecked:
            out[key] = None
            continue
        if access is not None and key in access.row_masks:
            value = access.mask_rows(key, value)
        # Text, ids and flags are their own JSON: skip the codec lookup (lists read fast).
        out[key] = value if type(value) in _AS_IS else field_json(definition, key, value)
    return out


def field_json(definition: FormDefinition, key: str, value: Any) -> Any:
    """One field's value as JSON (subform rows cell by cell)."""
    from engine.forms.values import to_json

    if value is None:
        return None
    spec = definition.compiled.fields.get(key)
    if spec is None:
        return value
    children = definition.compiled.subform_fields.get(key)
    if children is not None:
        return [
            {
                k: (None if v is None else to_json(children[k], v)) if k in children else v
                for k, v in row.items()
            }
            for row in value
        ]
    return to_json(spec, value)


def related_names(definition: FormDefinition, layout: RecordLayout) -> frozenset[str]:
    """Names the form's expressions read from related records: `relation.field` and lookups."""
    from engine.expr import references

    names: set[str] = set()
    for expression in definition.compiled.expressions.values():
        names |= references(expression)
    found: set[str] = set()
    for name in names:
        slot = layout.slot(name.split(".", 1)[0])
        if slot is None:
            continue
        if slot.kind == COMPUTED and str(slot.spec.type) == "lookup" and "." not in name:
            found.add(name)
        elif slot.kind == STORED and slot.target is not None and "." in name:
            found.add(name)
    return frozenset(found)


def writable_values(layout: RecordLayout, clean: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `clean` that are stored (computed fields are not)."""
    kinds = {slot.key: slot.kind for slot in layout.slots}
    return {k: v for k, v in clean.items() if kinds.get(k) in WRITABLE_KINDS}


def is_autonumber(layout: RecordLayout, key: str) -> bool:
    slot = layout.slot(key)
    return slot is not None and str(slot.spec.type) == "autonumber"


def comparable(layout: RecordLayout, key: str, value: Any) -> Any:
    """A value reduced to what is stored, so re-reads compare equal to clean input."""
    slot = layout.slot(key)
    if slot is None or slot.kind != SUBFORM or value is None:
        return value
    keys = [row.key for row in slot.rows if row.kind in WRITABLE_KINDS]
    return [{k: row.get(k) for k in keys} for row in value]


def history_changes(
    definition: FormDefinition,
    layout: RecordLayout,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    keys: Mapping[str, Any] | None = None,
) -> dict[str, list[Any]]:
    """`{field: [old, new]}` in JSON for every stored field that differs."""
    out: dict[str, list[Any]] = {}
    for slot in layout.slots:
        if slot.kind not in WRITABLE_KINDS or (keys is not None and slot.key not in keys):
            continue
        old = comparable(layout, slot.key, before.get(slot.key))
        new = comparable(layout, slot.key, after.get(slot.key))
        if old != new and not (old in (None, []) and new in (None, [])):
            out[slot.key] = [
                field_json(definition, slot.key, old),
                field_json(definition, slot.key, new),
            ]
    return out


def field_keys(layout: RecordLayout, keys: Iterable[str]) -> list[str]:
    """The keys that name a field of the form (system keys such as `version` are not writes)."""
    return [key for key in keys if layout.slot(key) is not None]


__all__ = [
    "WRITABLE_KINDS",
    "comparable",
    "field_json",
    "field_keys",
    "history_changes",
    "is_autonumber",
    "record_to_json",
    "related_names",
    "writable_values",
]
