"""How one form's records sit in its tables: built once per definition version, then reused.

A `RecordLayout` lists, per scope (the form, then each subform), a `Slot` per field saying where
its value lives (a column, several columns, a link table, a child table, another form's foreign
key), plus the unique indexes by field and every relation of the app that points at this form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from engine.storage.form_tables import FormTables, form_tables
from engine.storage.names import form_table_name

STORED = "column"  # one column
PARTS = "parts"  # several columns `<key>__<part>`: address, location, date_range
LINKS = "links"  # a multiple relation with its own link table
SUBFORM = "subform"  # child rows
BACKREF = "backref"  # a multiple relation stored by the other side (read only)
COMPUTED = "computed"  # lookup and rollup: SQL at read time


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one field's value lives."""

    key: str
    spec: Any
    kind: str
    columns: tuple[str, ...] = ()
    table: sa.Table | None = None  # link or child table
    rows: tuple[Slot, ...] = ()  # a subform's own slots
    target: str | None = None  # relation target form key (may be `app.form`)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(column.split("__", 1)[1] for column in self.columns)


@dataclass(frozen=True, slots=True)
class Reference:
    """A relation field of some form of the app that points at this layout's form."""

    form: str
    field: str  # "device" or "items.device"
    on_delete: str
    owner: sa.Table  # the referencing form's main table (its records are reported)
    table: sa.Table  # where the reference is stored: main, child or link table
    column: str  # the column holding this form's record id
    parent_column: str | None  # child/link tables: the column pointing at `owner`'s ids

    @property
    def is_link(self) -> bool:
        return "target_id" == self.column and self.parent_column == "source_id"


@dataclass(frozen=True, slots=True)
class RecordLayout:
    """Everything a `FormRecordStore` needs to read and write the records of one form."""

    app: str
    form: str
    main: sa.Table
    slots: tuple[Slot, ...]
    unique: Mapping[str, tuple[str, ...]]  # index name → field keys ("items.sku" in subforms)
    references: tuple[Reference, ...]
    tables: Mapping[str, FormTables]  # every form of the app by key, this one included
    expressions: Mapping[str, Any]  # parsed expressions of the compiled form by JSON pointer
    paths: Mapping[str, str]  # field key → JSON pointer in the form ("items.qty" too)
    by_key: Mapping[str, Slot]

    def slot(self, key: str) -> Slot | None:
        return self.by_key.get(key)


def build_record_layout(*, app: str, form: Any, forms: Mapping[str, Any]) -> RecordLayout:
    """The layout of `form` (a `CompiledForm`), given every form spec of the app by key."""
    spec = form.spec
    related = [s for k, s in forms.items() if k != spec.key] + [spec]
    tables = {key: form_tables(app=app, form=s, related_forms=related) for key, s in forms.items()}
    own = form_tables(app=app, form=spec, related_forms=related)
    tables[spec.key] = own
    slots = tuple(_slots(spec.fields, own, "", app, tables))
    return RecordLayout(
        app=app,
        form=spec.key,
        main=own.main,
        slots=slots,
        unique=_unique_fields(own),
        references=tuple(_references(app, spec.key, forms, tables)),
        tables=tables,
        expressions=form.expressions,
        paths=_paths(spec),
        by_key=MappingProxyType({slot.key: slot for slot in slots}),
    )


def _paths(spec: Any) -> dict[str, str]:
    paths: dict[str, str] = {}
    for index, field in enumerate(spec.fields):
        paths[field.key] = f"/fields/{index}"
        for child_index, child in enumerate(getattr(field, "fields", ()) or ()):
            paths[f"{field.key}.{child.key}"] = f"/fields/{index}/fields/{child_index}"
    return paths


def _slots(
    fields: Any, tables: FormTables, scope: str, app: str, all_tables: Mapping[str, FormTables]
) -> list[Slot]:
    slots: list[Slot] = []
    for spec in fields:
        if getattr(spec, "retired", False):
            continue
        slot = _slot(spec, tables, scope, app, all_tables)
        if slot is not None:
            slots.append(slot)
    return slots


def _slot(
    spec: Any, tables: FormTables, scope: str, app: str, all_tables: Mapping[str, FormTables]
) -> Slot | None:
    key, kind = str(spec.key), str(spec.type)
    dotted = scope + key
    columns = tables.field_columns.get(dotted, ())
    if kind in ("lookup", "rollup"):
        return Slot(key=key, spec=spec, kind=COMPUTED)
    if kind == "subform":
        child = tables.children[dotted]
        rows = tuple(_slots(spec.fields, tables, f"{dotted}.", app, all_tables))
        return Slot(key=key, spec=spec, kind=SUBFORM, table=child, rows=rows)
    if kind == "relation" and getattr(spec, "multiple", False):
        target = str(spec.form)
        if dotted in tables.children:
            return Slot(key, spec, LINKS, table=tables.children[dotted], target=target)
        return Slot(key=key, spec=spec, kind=BACKREF, target=target)
    if not columns:
        return None
    reference = str(spec.form) if kind == "relation" else None
    if len(columns) == 1 and columns[0] == key:
        return Slot(key=key, spec=spec, kind=STORED, columns=columns, target=reference)
    return Slot(key=key, spec=spec, kind=PARTS, columns=columns)


def _unique_fields(tables: FormTables) -> dict[str, tuple[str, ...]]:
    """Unique index name → the field keys it covers, for every table of the form."""
    owners: dict[tuple[str, str], str] = {}
    for dotted, columns in tables.field_columns.items():
        scope = dotted.rsplit(".", 1)[0] if "." in dotted else ""
        owner = tables.children[scope].name if scope else tables.main.name
        owners.update({(owner, column): dotted for column in columns})
    found: dict[str, tuple[str, ...]] = {}
    for table in (tables.main, *tables.children.values()):
        for index in table.indexes:
            if not index.unique or index.name is None:
                continue
            keys = [owners.get((table.name, c.name)) for c in index.columns]
            found[str(index.name)] = tuple(dict.fromkeys(k for k in keys if k is not None))
    return found


def _references(
    app: str, form: str, forms: Mapping[str, Any], tables: Mapping[str, FormTables]
) -> list[Reference]:
    """Every stored relation of the app's forms whose target is `form`."""
    found: list[Reference] = []
    target = form_table_name(app, form)
    for key, spec in sorted(forms.items()):
        own = tables[key]
        for field in spec.fields:
            found += _field_references(key, own, field, scope="", target=target, app=app)
            for child in getattr(field, "fields", ()) or ():
                scope = f"{field.key}."
                found += _field_references(key, own, child, scope=scope, target=target, app=app)
    return found


def _field_references(
    form: str, own: FormTables, field: Any, *, scope: str, target: str, app: str
) -> list[Reference]:
    if str(field.type) != "relation" or getattr(field, "retired", False):
        return []
    if form_table_name(app, str(field.form)) != target:
        return []
    dotted = scope + str(field.key)
    table = own.children[scope[:-1]] if scope else own.main
    parent = "parent_id" if scope else None
    on_delete = str(getattr(field, "on_delete", "refuse"))

    def reference(stored_in: sa.Table, column: str, parent_column: str | None) -> Reference:
        return Reference(form, dotted, on_delete, own.main, stored_in, column, parent_column)

    if not getattr(field, "multiple", False):
        return [reference(table, str(field.key), parent)]
    link = own.children.get(dotted)
    if link is None or scope:  # stored by the other side, or links of subform rows
        return []
    return [reference(link, "target_id", "source_id")]


__all__ = [
    "BACKREF",
    "COMPUTED",
    "LINKS",
    "PARTS",
    "STORED",
    "SUBFORM",
    "RecordLayout",
    "Reference",
    "Slot",
    "build_record_layout",
]
