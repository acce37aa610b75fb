"""Field type → storage: the columns, indexes and child tables each field type needs.

One builder per `type` string in `COLUMN_BUILDERS`; field specs are read duck-typed (`getattr`
with defaults) so this works on any object with `.key` and `.type`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.storage.names import child_table_name
from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime

TEXT_DEFAULT_LENGTH = 255
TEXT_MAX_VARCHAR = 4000
ADDRESS_PARTS = ("province", "city", "district", "detail")


@dataclass(frozen=True, slots=True)
class ChildTable:
    """A table a field needs beside its form's table: subform rows or relation links."""

    name: str
    field_key: str
    columns: tuple[sa.Column[Any], ...]
    fields: tuple[Any, ...] = ()  # a subform's own fields, built recursively


@dataclass(frozen=True, slots=True)
class FieldStorage:
    """What one field occupies in the database."""

    columns: tuple[sa.Column[Any], ...] = ()
    children: tuple[ChildTable, ...] = ()
    indexed: tuple[str, ...] = ()  # column names that get a plain index


@dataclass(frozen=True, slots=True)
class BuildContext:
    """Where a field is stored: its table and how relation targets map to table names."""

    table: str
    resolve_form: Callable[[str], str]
    # (form reference, field key) → that field's spec, when the form is known to this publish
    find_field: Callable[[str, str], Any | None] = lambda _form, _key: None


Builder = Callable[[Any, BuildContext], FieldStorage]


def _option(spec: Any, name: str, default: Any = None) -> Any:
    value = getattr(spec, name, default)
    return default if value is None else value


def _single(type_: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]) -> Builder:
    def build(spec: Any, _ctx: BuildContext) -> FieldStorage:
        return FieldStorage(columns=(sa.Column(spec.key, type_, nullable=True),))

    return build


def _text(spec: Any, _ctx: BuildContext) -> FieldStorage:
    length = int(_option(spec, "max_length", TEXT_DEFAULT_LENGTH))
    type_ = sa.Text() if length > TEXT_MAX_VARCHAR else sa.String(length)
    return FieldStorage(columns=(sa.Column(spec.key, type_, nullable=True),))


def _number(spec: Any, _ctx: BuildContext) -> FieldStorage:
    decimals = _option(spec, "decimals")
    type_ = sa.Float() if decimals is None else sa.Numeric(18, int(decimals))
    return FieldStorage(columns=(sa.Column(spec.key, type_, nullable=True),))


def _parts(suffixes: tuple[str, ...], type_: sa.types.TypeEngine[Any]) -> Callable[..., Any]:
    def columns(key: str) -> tuple[sa.Column[Any], ...]:
        return tuple(sa.Column(f"{key}__{s}", type_, nullable=True) for s in suffixes)

    return columns


def _date_range(spec: Any, _ctx: BuildContext) -> FieldStorage:
    return FieldStorage(columns=_parts(("start", "end"), sa.Date())(spec.key))


def _address(spec: Any, _ctx: BuildContext) -> FieldStorage:
    parts = tuple(_option(spec, "parts", ADDRESS_PARTS))
    columns = tuple(
        sa.Column(f"{spec.key}__{part}", sa.Text() if part == "detail" else sa.String(64))
        for part in parts
    )
    return FieldStorage(columns=columns)


def _location(spec: Any, _ctx: BuildContext) -> FieldStorage:
    suffixes = ("lng", "lat", "accuracy") if _option(spec, "accuracy", True) else ("lng", "lat")
    return FieldStorage(columns=_parts(suffixes, sa.Float())(spec.key))


def _reference(target: str, id_type: sa.types.TypeEngine[Any]) -> Builder:
    def build(spec: Any, ctx: BuildContext) -> FieldStorage:
        if _option(spec, "multiple", False):
            return FieldStorage(columns=(sa.Column(spec.key, JSONDocument, nullable=True),))
        column = sa.Column(spec.key, id_type, sa.ForeignKey(target), nullable=True)
        return FieldStorage(columns=(column,), indexed=(spec.key,))

    return build


def _is_back_reference(spec: Any, ctx: BuildContext) -> bool:
    """A multiple relation whose `inverse` side stores the link: it needs no storage here.

    One-to-many: the target's single relation is the foreign key. Many-to-many: both sides are
    multiple and the side whose (table, field) sorts first owns the link table.
    """
    inverse = _option(spec, "inverse")
    if inverse is None:
        return False
    other = ctx.find_field(str(spec.form), str(inverse))
    if other is None or not _option(other, "multiple", False):
        return True
    return (ctx.resolve_form(str(spec.form)), str(inverse)) < (ctx.table, str(spec.key))


def _relation(spec: Any, ctx: BuildContext) -> FieldStorage:
    target = f"{ctx.resolve_form(str(spec.form))}.id"
    if not _option(spec, "multiple", False):
        column = sa.Column(spec.key, RowId, sa.ForeignKey(target), nullable=True)
        return FieldStorage(columns=(column,), indexed=(spec.key,))
    if _is_back_reference(spec, ctx):
        return FieldStorage()
    link = ChildTable(
        name=child_table_name(ctx.table, spec.key),
        field_key=spec.key,
        columns=(
            sa.Column(
                "source_id",
                RowId,
                sa.ForeignKey(f"{ctx.table}.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column(
                "target_id",
                RowId,
                sa.ForeignKey(target, ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        ),
    )
    return FieldStorage(children=(link,))


def _subform(spec: Any, ctx: BuildContext) -> FieldStorage:
    child = ChildTable(
        name=child_table_name(ctx.table, spec.key),
        field_key=spec.key,
        columns=(
            sa.Column("id", RowId, sa.Identity(), primary_key=True),
            sa.Column(
                "parent_id",
                RowId,
                sa.ForeignKey(f"{ctx.table}.id", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        ),
        fields=tuple(_option(spec, "fields", ())),
    )
    return FieldStorage(children=(child,))


def _formula(spec: Any, ctx: BuildContext) -> FieldStorage:
    result_type = str(_option(spec, "result_type", "text"))
    builder = COLUMN_BUILDERS.get(result_type, _text)
    return builder(spec, ctx)


def _autonumber(spec: Any, _ctx: BuildContext) -> FieldStorage:
    return FieldStorage(columns=(sa.Column(spec.key, sa.String(64), nullable=True),))


def _nothing(_spec: Any, _ctx: BuildContext) -> FieldStorage:
    return FieldStorage()


COLUMN_BUILDERS: dict[str, Builder] = {
    "text": _text,
    "textarea": _single(sa.Text()),
    "rich_text": _single(sa.Text()),
    "email": _single(sa.String(254)),
    "phone": _single(sa.String(32)),
    "url": _single(sa.String(2048)),
    "number": _number,
    "money": _single(sa.Numeric(18, 2)),
    "percent": _single(sa.Numeric(9, 4)),
    "date": _single(sa.Date()),
    "datetime": _single(UtcDateTime()),
    "time": _single(sa.Time()),
    "date_range": _date_range,
    "select": _single(sa.String(64)),
    "cascade": _single(sa.String(64)),
    "multiselect": _single(JSONDocument),
    "boolean": _single(sa.Boolean()),
    "rating": _single(sa.SmallInteger()),
    "address": _address,
    "location": _location,
    "image": _single(JSONDocument),
    "attachment": _single(JSONDocument),
    "signature": _single(JSONDocument),
    "user": _reference("users.id", sa.Integer()),
    "department": _reference("departments.id", sa.Integer()),
    "relation": _relation,
    "subform": _subform,
    "lookup": _nothing,
    "rollup": _nothing,
    "formula": _formula,
    "autonumber": _autonumber,
    "section": _nothing,
    "divider": _nothing,
    "description": _nothing,
}

# Autonumbers are unique whether or not the definition says so.
ALWAYS_UNIQUE = frozenset({"autonumber"})


def build_field_storage(spec: Any, ctx: BuildContext) -> FieldStorage | None:
    """The storage of one field, or None for a type this module does not know."""
    builder = COLUMN_BUILDERS.get(str(spec.type))
    return None if builder is None else builder(spec, ctx)


__all__ = [
    "ALWAYS_UNIQUE",
    "COLUMN_BUILDERS",
    "BuildContext",
    "ChildTable",
    "FieldStorage",
    "build_field_storage",
]
