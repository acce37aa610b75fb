"""Comparing a form's desired tables with the database: the steps, retired columns, problems.

Type changes found here are checked against the data at once (`_type_changes`), and so are new
unique indexes (duplicate groups), so a plan that would lose a value carries its problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Dialect

from engine.errors import NotFoundError, Problem
from engine.storage._form_schema import DesiredSchema, build_desired_schema
from engine.storage._type_changes import (
    REPORTED_IDS,
    ChangeType,
    LostValues,
    MoveToLinks,
    describe_lost,
    field_type,
    find_lost_values,
    plan_change,
)
from engine.storage.names import fit_identifier


@dataclass(frozen=True, slots=True)
class CreateTable:
    table: sa.Table


@dataclass(frozen=True, slots=True)
class AddColumn:
    table: str
    column: sa.Column[Any]


@dataclass(frozen=True, slots=True)
class CreateIndex:
    index: sa.Index


@dataclass(frozen=True, slots=True)
class RetireColumn:
    """A column no field of the definition owns any more: kept, reported, never dropped."""

    table: str
    column: str


Step = CreateTable | AddColumn | CreateIndex | ChangeType | MoveToLinks


def sorted_indexes(table: sa.Table) -> list[sa.Index]:
    return sorted(table.indexes, key=lambda index: str(index.name))


def published_form(conn: sa.Connection, app: str, key: str) -> Any | None:
    """The form's current definition, parsed, or None when it was never published."""
    from engine.forms.spec import FormSpec
    from engine.storage.definitions import DefinitionStore

    if not sa.inspect(conn).has_table("definition_versions"):  # a database without engine tables
        return None
    try:
        record = DefinitionStore(conn).get_current(app=app, kind="forms", key=key)
    except NotFoundError:
        return None
    try:
        return FormSpec.model_validate(record.body)
    except ValueError:  # a body of an older format: fall back to the column types
        return None


def _previous_fields(
    app: str, previous: Any | None, related_forms: Sequence[Any]
) -> dict[tuple[str, str], Any]:
    """(table, column) → the field that owned it in the previous definition."""
    if previous is None:
        return {}
    schema = build_desired_schema(app, previous, related_forms)
    # a field without a column of its own name (a multiple relation) is found by its key
    by_key = {
        (schema.field_tables[path], str(spec.key)): spec
        for path, spec in schema.field_specs.items()
    }
    return by_key | {place: schema.field_specs[path] for place, path in schema.owners.items()}


class TableDiff:
    """Compares the desired tables of one form with the database (one inspector per plan)."""

    def __init__(
        self,
        conn: sa.Connection,
        desired: DesiredSchema,
        app: str,
        previous: Any | None,
        related_forms: Sequence[Any],
        option_sets: Mapping[str, Any] | None,
    ) -> None:
        self.conn = conn
        self.desired = desired
        self.previous = _previous_fields(app, previous, related_forms)
        self.option_sets = option_sets or {}
        self.inspector = sa.inspect(conn)
        self.context = MigrationContext.configure(conn)

    def table(self, table: sa.Table) -> tuple[list[Step], list[RetireColumn], list[Problem]]:
        reflected = {c["name"]: c for c in self.inspector.get_columns(table.name)}
        targets = self._foreign_targets(table.name)
        indexes = {
            str(i["name"]): [str(c) for c in i["column_names"]]
            for i in self.inspector.get_indexes(table.name)
        }
        index_names = set(indexes)
        index_names |= {str(u["name"]) for u in self.inspector.get_unique_constraints(table.name)}
        steps: list[Step] = []
        problems: list[Problem] = []
        for column in table.columns:
            found = reflected.get(column.name)
            if found is None:
                steps.append(AddColumn(table.name, column))
                continue
            change = self._change(table, column, found["type"], targets.get(column.name))
            if isinstance(change, Problem):
                problems.append(change)
            elif change is not None:
                change = self._prepared(change, indexes, targets, set(reflected))
                index_names -= set(change.drop_indexes)
                lost = find_lost_values(self.conn, change, self._option_keys(change.target.spec))
                problems += [_lost_problem(change, item) for item in lost]
                steps.append(change)
        retired = [
            RetireColumn(table.name, name)
            for name in reflected
            if name not in table.c and (table.name, name) not in self.desired.kept
        ]
        new_indexes = [i for i in sorted_indexes(table) if i.name not in index_names]
        filled = [
            i for i in new_indexes if i.unique and {c.name for c in i.columns} <= set(reflected)
        ]
        problems += [p for i in filled for p in self._duplicates(i, reflected)]
        return steps + [CreateIndex(i) for i in new_indexes], retired, problems

    def moved_links(self, link: sa.Table) -> list[Step]:
        """A new link table of a relation that was single: move the ids across."""
        if "source_id" not in link.c or "target_id" not in link.c:
            return []
        field = next((k for k, t in self.desired.child_tables.items() if t is link), "")
        source = next(iter(link.c.source_id.foreign_keys)).column.table.name
        column = field.rsplit(".", 1)[-1]
        if not self.inspector.has_table(source):
            return []
        if column not in self._foreign_targets(source):
            return []
        return [MoveToLinks(table=source, column=column, link_table=link.name)]

    def _foreign_targets(self, table: str) -> dict[str, str]:
        return {
            fk["constrained_columns"][0]: fk["referred_table"]
            for fk in self.inspector.get_foreign_keys(table)
            if len(fk["constrained_columns"]) == 1
        }

    def _change(
        self,
        table: sa.Table,
        column: sa.Column[Any],
        found: sa.types.TypeEngine[Any],
        found_target: str | None,
    ) -> ChangeType | Problem | None:
        path = self.desired.owners.get((table.name, column.name), "")
        spec = self.desired.field_specs.get(path)
        differ = bool(self.context.impl.compare_type(sa.Column(column.name, found), column))
        if spec is None:  # a system column
            return None
        result = plan_change(
            table=table.name,
            column=column,
            found=found,
            found_target=found_target,
            types_differ=differ,
            new_spec=spec,
            old_spec=self.previous.get((table.name, column.name)),
            path=path,
        )
        if isinstance(result, str):
            return _unsupported(table, column, found, path, self.context.dialect)
        return result

    def _prepared(
        self,
        change: ChangeType,
        indexes: dict[str, list[str]],
        targets: dict[str, str],
        columns: set[str],
    ) -> ChangeType:
        """Fill in the indexes to drop and, on SQLite, where a referencing column is kept."""
        if not change.alters:
            return change
        name = change.column.name
        drop = tuple(sorted(i for i, cols in indexes.items() if name in cols))
        keep = None
        if self.conn.dialect.name == "sqlite" and name in targets:
            keep = _spare_name(name, change.old_kind, columns)
        return replace(change, drop_indexes=drop, keep_old_as=keep)

    def _option_keys(self, spec: Any) -> frozenset[str] | None:
        options = tuple(getattr(spec, "options", ()) or ())
        shared = getattr(spec, "option_set", None)
        if shared is not None:
            if shared not in self.option_sets:
                return None
            options += tuple(self.option_sets[shared].options)
        return frozenset(str(option.key) for option in options)

    def _duplicates(self, index: sa.Index, reflected: dict[str, Any]) -> list[Problem]:
        """Duplicate groups that a new unique index would refuse, reported before applying.

        The values are compared as they are stored now (a type change comes later).
        """
        table = sa.Table(
            str(getattr(index.table, "name", "")),
            sa.MetaData(),
            *(sa.Column(name, column["type"]) for name, column in reflected.items()),
        )
        columns = [table.c[c.name] for c in index.columns]
        live = table.c.deleted_at.is_(None) if "deleted_at" in table.c else sa.true()
        groups = self.conn.execute(
            sa.select(*columns, sa.func.count().label("n"))
            .where(live, *(c.is_not(None) for c in columns))
            .group_by(*columns)
            .having(sa.func.count() > 1)
            .order_by(*columns)
        ).all()
        if not groups:
            return []
        shown = []
        for group in groups[:3]:
            where = [c == value for c, value in zip(columns, group[:-1], strict=True)]
            ids = self.conn.scalars(
                sa.select(table.c.id).where(live, *where).order_by(table.c.id).limit(REPORTED_IDS)
            ).all()
            values = ", ".join(repr(v) for v in group[:-1])
            shown.append(f"({values}): ids {', '.join(str(i) for i in ids)}")
        more = f"; {len(groups) - 3} more groups" if len(groups) > 3 else ""
        path = self.desired.unique_paths.get(str(index.name), "")
        return [
            Problem(
                code="storage.duplicate-values",
                path=path,
                message=f"{len(groups)} duplicate groups refuse unique index {index.name}: "
                + "; ".join(shown)
                + more,
                hint="change or delete the duplicate records first, then publish again",
            )
        ]


def _spare_name(name: str, kind: str, columns: set[str]) -> str:
    """A free column name that keeps an old referencing column on SQLite."""
    candidate, number = fit_identifier(f"{name}__was_{kind}"), 1
    while candidate in columns:
        number += 1
        candidate = fit_identifier(f"{name}__was_{kind}{number}")
    return candidate


_LOSSES = {
    "storage.value-too-long": "longer than the new column allows",
    "storage.value-not-an-option": "not an option of the new select",
    "storage.value-unparseable": "not readable as the new type",
    "storage.value-out-of-range": "out of the new type's range or precision",
}


def _lost_problem(change: ChangeType, lost: LostValues) -> Problem:
    old_type = field_type(change.target.old_spec) if change.target.old_spec else change.old_kind
    new_type = field_type(change.target.spec)
    return Problem(
        code=lost.code,
        path=f"{change.path}/type" if old_type != new_type else change.path,
        message=f"{describe_lost(lost)} of {change.table}.{change.column.name} are "
        f"{_LOSSES[lost.code]} ({old_type} -> {new_type}); nothing was changed",
        hint="fix those records first, or keep the old type",
    )


def _unsupported(
    table: sa.Table,
    column: sa.Column[Any],
    found: sa.types.TypeEngine[Any],
    path: str,
    dialect: Dialect,
) -> Problem:
    old, new = found.compile(dialect), column.type.compile(dialect)
    return Problem(
        code="storage.type-change-unsupported",
        path=f"{path}/type" if path else "",
        message=f"column {table.name}.{column.name} is {old}; the definition needs {new}, "
        "which is not on the allow-list of safe changes",
        hint="keep the old type, or add a new field and retire this one",
    )


__all__ = [
    "AddColumn",
    "CreateIndex",
    "CreateTable",
    "RetireColumn",
    "Step",
    "TableDiff",
    "published_form",
    "sorted_indexes",
]
