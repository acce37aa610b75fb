"""The tables a form definition needs, built in memory: the synchroniser's target schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.errors import Problem
from engine.forms._catalog import SYSTEM_COLUMNS as SYSTEM_FIELD_KEYS
from engine.storage._form_columns import (
    ALWAYS_UNIQUE,
    BuildContext,
    ChildTable,
    build_field_storage,
)
from engine.storage.names import form_table_name, index_name, unique_index_name
from engine.storage.sqltypes import RowId, UtcDateTime
from engine.storage.tables import NAMING_CONVENTION

LIVE_ROWS = "deleted_at IS NULL"


@dataclass(frozen=True, slots=True)
class DesiredSchema:
    """The tables a form needs, and which JSON pointer owns each (table, column)."""

    metadata: sa.MetaData
    tables: tuple[sa.Table, ...]
    owners: dict[tuple[str, str], str]
    kept: frozenset[tuple[str, str]]
    targets: dict[str, str]
    problems: tuple[Problem, ...]
    field_columns: dict[str, tuple[str, ...]]  # "field" or "subform.field" → column names
    child_tables: dict[str, sa.Table]  # "subform" or "relation" (or "subform.relation") → table
    # JSON pointer of a field ("/fields/3") → its spec, for every stored, unretired field
    field_specs: dict[str, Any] = field(default_factory=dict)
    # unique index name → the pointer that asks for it ("/fields/3/unique", "/unique/0")
    unique_paths: dict[str, str] = field(default_factory=dict)
    # JSON pointer of a field → the table it sits in (also for fields without a column)
    field_tables: dict[str, str] = field(default_factory=dict)


def _system_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", RowId, sa.Identity(), primary_key=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
    ]


class _TableBuilder:
    """Collects the tables, owners and problems of one form while walking its fields."""

    def __init__(self, app: str, related_forms: Sequence[Any]) -> None:
        self.app = app
        self.fields = {
            (form_table_name(app, str(form.key)), str(spec.key)): spec
            for form in related_forms
            for spec in getattr(form, "fields", ())
        }
        self.metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
        self.tables: list[sa.Table] = []
        self.owners: dict[tuple[str, str], str] = {}
        self.kept: set[tuple[str, str]] = set()
        self.targets: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.field_columns: dict[str, tuple[str, ...]] = {}
        self.child_tables: dict[str, sa.Table] = {}
        self.field_specs: dict[str, Any] = {}
        self.unique_paths: dict[str, str] = {}
        self.field_tables: dict[str, str] = {}

    def resolve(self, form_ref: str) -> str:
        return form_table_name(self.app, form_ref)

    def find_field(self, form_ref: str, key: str) -> Any | None:
        return self.fields.get((self.resolve(form_ref), key))

    def table(
        self,
        name: str,
        base: list[sa.Column[Any]],
        fields: Sequence[Any],
        prefix: str,
        scope: str = "",
    ) -> tuple[sa.Table, dict[str, list[str]]]:
        """Build table `name`; returns it and the column names of each field key.

        `prefix` is the JSON pointer of `fields`; `scope` the dotted key path ("items.").
        """
        columns = {column.name: column for column in base}
        reserved = set(columns)
        by_field: dict[str, list[str]] = {}
        unique: list[tuple[list[str], str]] = []
        indexed: list[str] = []
        children: list[tuple[ChildTable, str, str]] = []
        context = BuildContext(table=name, resolve_form=self.resolve, find_field=self.find_field)
        for position, spec in enumerate(fields):
            path = f"{prefix}/{position}"
            storage = build_field_storage(spec, context)
            if storage is None:
                self._problem("storage.unknown-field-type", f"{path}/type", spec)
                continue
            if getattr(spec, "retired", False):
                self.kept.update((name, c.name) for c in storage.columns)
                continue
            if str(spec.type) == "relation" and not getattr(spec, "multiple", False):
                self.targets[f"{path}/form"] = self.resolve(str(spec.form))
            for column in storage.columns:
                if column.name in columns:
                    code = "reserved-column" if column.name in reserved else "duplicate-column"
                    self._problem(f"storage.{code}", f"{path}/key", spec, column.name)
                    continue
                columns[column.name] = column
                self.owners[(name, column.name)] = path
            names = [column.name for column in storage.columns]
            self.field_specs[path] = spec
            self.field_tables[path] = name
            by_field[str(spec.key)] = names
            if names:
                self.field_columns[scope + str(spec.key)] = tuple(names)
            if names and (getattr(spec, "unique", False) or str(spec.type) in ALWAYS_UNIQUE):
                unique.append((names, f"{path}/unique"))
            indexed += storage.indexed
            children += [(child, path, scope) for child in storage.children]
        table = sa.Table(name, self.metadata, *columns.values())
        self.tables.append(table)
        self._add_indexes(table, unique, indexed)
        for child, path, child_scope in children:
            self._child(child, path, child_scope)
        return table, by_field

    def _child(self, child: ChildTable, path: str, scope: str) -> None:
        for column in child.columns:
            for fk in column.foreign_keys:
                if fk.target_fullname.split(".")[0] != self.tables[0].name:
                    self.targets[f"{path}/form"] = fk.target_fullname.split(".")[0]
        dotted = scope + child.field_key
        table, _ = self.table(
            child.name, list(child.columns), child.fields, f"{path}/fields", f"{dotted}."
        )
        self.child_tables[dotted] = table
        for column in child.columns:
            if column.name in ("parent_id", "target_id"):
                _add_index(table, [column.name])

    def _add_indexes(
        self, table: sa.Table, unique: list[tuple[list[str], str]], indexed: list[str]
    ) -> None:
        soft_deleted = "deleted_at" in table.c
        where: dict[str, Any] = {
            "sqlite_where": sa.text(LIVE_ROWS),
            "postgresql_where": sa.text(LIVE_ROWS),
        }
        for names, path in unique:
            # Soft-deleted records must not block a new record with the same value.
            extra: dict[str, Any] = where if soft_deleted else {}
            name = _add_index(table, names, unique=True, **extra)
            if name is not None:
                self.unique_paths[name] = path
        for column_name in indexed:
            _add_index(table, [column_name])

    def _problem(self, code: str, path: str, spec: Any, detail: str = "") -> None:
        messages = {
            "storage.unknown-field-type": f"no storage for field type {spec.type!r}",
            "storage.duplicate-column": f"column {detail!r} of field {spec.key!r} is taken",
            "storage.reserved-column": f"column {detail!r} is a system column",
        }
        self.problems.append(Problem(code=code, path=path, message=messages[code]))


def build_desired_schema(app: str, form: Any, related_forms: Sequence[Any] = ()) -> DesiredSchema:
    builder = _TableBuilder(app, related_forms)
    fields = tuple(getattr(form, "fields", ()))
    main, by_field = builder.table(
        form_table_name(app, str(form.key)), _system_columns(), fields, "/fields"
    )
    builder.unique_paths |= _add_form_constraints(main, by_field, form)
    _add_stub_tables(builder.metadata)
    return DesiredSchema(
        metadata=builder.metadata,
        tables=tuple(builder.tables),
        owners=builder.owners,
        kept=frozenset(builder.kept),
        targets=builder.targets,
        problems=tuple(builder.problems),
        field_columns=builder.field_columns,
        child_tables=builder.child_tables,
        field_specs=builder.field_specs,
        unique_paths=builder.unique_paths,
        field_tables=builder.field_tables,
    )


def _add_form_constraints(
    table: sa.Table, by_field: dict[str, list[str]], form: Any
) -> dict[str, str]:
    """Composite `unique` and `indexes` of the form (lists of field keys).

    Returns the pointer of each new unique index ("/unique/0") by index name.
    """
    where: dict[str, Any] = {
        "sqlite_where": sa.text(LIVE_ROWS),
        "postgresql_where": sa.text(LIVE_ROWS),
    }
    paths: dict[str, str] = {}
    for position, keys in enumerate(getattr(form, "unique", ())):
        names = [name for key in keys for name in by_field.get(str(key), [])]
        created = _add_index(table, names, unique=True, **where) if names else None
        if created is not None:
            paths[created] = f"/unique/{position}"
    for keys in getattr(form, "indexes", ()):
        names = [name for key in keys for name in by_field.get(str(key), _system(table, key))]
        if names:
            _add_index(table, names)
    return paths


def _system(table: sa.Table, key: Any) -> list[str]:
    """The column of system field `key` (`owner` is stored as owner_id), [] for anything else."""
    name = "owner_id" if key == "owner" else str(key)
    return [name] if name in table.c and key in SYSTEM_FIELD_KEYS else []


def _add_index(table: sa.Table, names: list[str], *, unique: bool = False, **kw: Any) -> str | None:
    """Index `names` once: a field index and a form index on the same columns are one index.

    Returns the new index's name, None when the columns were already indexed.
    """
    covered = {tuple(c.name for c in index.columns) for index in table.indexes}
    if tuple(names) in covered:
        return None
    name = unique_index_name(table.name, names) if unique else index_name(table.name, names)
    sa.Index(name, *(table.c[n] for n in names), unique=unique, **kw)
    return name


def _add_stub_tables(metadata: sa.MetaData) -> None:
    """Placeholder tables for foreign-key targets outside the form, so DDL can compile."""
    for table in list(metadata.tables.values()):
        for fk in table.foreign_keys:
            target = fk.target_fullname.split(".")[0]
            if target not in metadata.tables:
                id_type = sa.Integer() if target in ("users", "departments") else RowId
                sa.Table(target, metadata, sa.Column("id", id_type, primary_key=True))


__all__ = ["LIVE_ROWS", "DesiredSchema", "build_desired_schema"]
