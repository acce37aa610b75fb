"""The schema synchroniser: form definition → real tables, as a plan, then applied.

A plan creates tables, adds columns and indexes, and changes column types along the allow-list
of `_type_changes` after checking the existing data. A field that disappeared from the
definition is reported as retired and its column kept. Plans are applied with Alembic
operations inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Dialect

from engine.errors import ConflictError, DefinitionError, Problem
from engine.storage._form_diff import (
    AddColumn,
    CreateIndex,
    CreateTable,
    RetireColumn,
    Step,
    TableDiff,
    published_form,
    sorted_indexes,
)
from engine.storage._form_purge import purge_columns
from engine.storage._form_schema import DesiredSchema, build_desired_schema
from engine.storage._type_changes import (
    ChangeType,
    MoveToLinks,
    add_column,
    apply_change,
    field_type,
    move_to_links,
)
from engine.storage.conflicts import translating_conflicts
from engine.storage.names import form_table_name
from engine.storage.tables import NAMING_CONVENTION

DDL_FAILED = "storage.ddl-failed"

SYSTEM_COLUMNS = (
    "id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "owner_id",
    "version",
    "deleted_at",
)


# Step classes live in _form_diff (the comparison builds them); re-exported here.

# `previous` of plan_form_table: read the form's current definition from the database.
FROM_DATABASE: Any = object()


@dataclass(frozen=True, slots=True)
class FormTablePlan:
    """What publishing a form would do to its tables; empty when they already match."""

    app: str
    form: str
    table: str
    steps: tuple[Step, ...]
    retired: tuple[RetireColumn, ...]
    problems: tuple[Problem, ...]
    dialect: Dialect

    @property
    def is_empty(self) -> bool:
        return not self.steps


@dataclass(frozen=True, slots=True)
class FormTables:
    """The Core tables of one form, for reading and writing its records.

    `children` maps a subform or multiple-relation field ("items", "items.parts") to its child
    or link table; `field_columns` maps every stored field ("title", "items.sku") to its columns
    (one, or several for date_range, address and location).
    """

    main: sa.Table
    children: Mapping[str, sa.Table]
    field_columns: Mapping[str, tuple[str, ...]]


def form_tables(*, app: str, form: Any, related_forms: Sequence[Any] = ()) -> FormTables:
    """The tables `form` is stored in, as the synchroniser builds them (no database access)."""
    desired = build_desired_schema(app, form, related_forms)
    return FormTables(
        main=desired.tables[0],
        children=MappingProxyType(dict(desired.child_tables)),
        field_columns=MappingProxyType(dict(desired.field_columns)),
    )


def plan_form_table(
    conn: sa.Connection,
    *,
    app: str,
    form: Any,
    planned_tables: Iterable[str] = (),
    related_forms: Sequence[Any] = (),
    previous: Any = FROM_DATABASE,
    option_sets: Mapping[str, Any] | None = None,
) -> FormTablePlan:
    """Compare `form` with the database and list the steps that make its tables match.

    Type changes are checked against the data now: a value that would be lost is a problem
    naming the records, and so are duplicates under a new unique index.

    Args:
        planned_tables: tables that other plans of the same publish create first (relation
            targets that do not exist yet).
        related_forms: other forms of the app, to see which side of a two-way relation stores
            it (a multiple relation with `inverse` stores nothing when the target is unknown).
        previous: the form as published before (None: never published); by default its
            current definition is read from the database.
        option_sets: shared option sets by key (objects with `options`), to check the values
            of a field that becomes a select.
    """
    desired = build_desired_schema(app, form, related_forms)
    if previous is FROM_DATABASE:
        previous = published_form(conn, app, str(form.key))
    diff = TableDiff(conn, desired, app, previous, related_forms, option_sets)
    existing = set(diff.inspector.get_table_names())
    steps: list[Step] = []
    retired: list[RetireColumn] = []
    problems = list(desired.problems)
    problems += _missing_targets(desired, existing | set(planned_tables))
    for table in desired.tables:
        if table.name not in existing:
            steps.append(CreateTable(table))
            steps += diff.moved_links(table)
            steps += [CreateIndex(index) for index in sorted_indexes(table)]
            continue
        found = diff.table(table)
        steps += found[0]
        retired += found[1]
        problems += found[2]
    return FormTablePlan(
        app=app,
        form=str(form.key),
        table=desired.tables[0].name,
        steps=tuple(steps),
        retired=tuple(retired),
        problems=tuple(problems),
        dialect=conn.dialect,
    )


def apply_form_table_plan(conn: sa.Connection, plan: FormTablePlan) -> None:
    """Run the plan's steps on `conn`, in the caller's transaction (DDL is transactional here).

    Raises:
        DefinitionError: the plan has problems; nothing is changed.
        ConflictError: the data refuses a step (e.g. duplicates under a new unique index), or
            the database refuses the DDL (`storage.ddl-failed`, e.g. a view uses the column).
    """
    apply_form_table_plans(conn, [plan])


def plan_form_tables(
    conn: sa.Connection, *, app: str, forms: Sequence[Any]
) -> tuple[FormTablePlan, ...]:
    """Plans for every form of one publish, relation targets before the forms pointing at them."""
    planned = {form_table_name(app, str(form.key)) for form in forms}
    return tuple(
        plan_form_table(conn, app=app, form=form, planned_tables=planned, related_forms=forms)
        for form in _order_by_relations(app, forms)
    )


def apply_form_table_plans(conn: sa.Connection, plans: Sequence[FormTablePlan]) -> None:
    """Apply several plans together: all new tables first, then columns and indexes.

    Forms that point at each other get their tables; on PostgreSQL a foreign key to a table
    that does not exist yet is added once it does.
    """
    problems = [problem for plan in plans for problem in plan.problems]
    if problems:
        raise DefinitionError(problems)
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    operations = Operations(MigrationContext.configure(conn, opts={"target_metadata": metadata}))
    steps = [step for plan in plans for step in plan.steps]
    creates = [step.table for step in steps if isinstance(step, CreateTable)]
    try:
        with translating_conflicts():
            _create_tables(operations, creates, set(sa.inspect(conn).get_table_names()))
            for step in steps:
                if not isinstance(step, CreateTable):
                    _APPLIERS[type(step)](operations, step)
    except sa.exc.DBAPIError as err:  # e.g. a view of a BI tool depends on a changed column
        message = f"the database refused the table change: {err.orig}"
        raise ConflictError(message, code=DDL_FAILED) from err


def describe(plan: FormTablePlan) -> list[str]:
    """One line per change, retired column and problem, for a terminal or a review page."""
    lines = [line for step in plan.steps for line in _DESCRIBERS[type(step)](step, plan.dialect)]
    lines += [f"~ column {r.table}.{r.column} retired (kept)" for r in plan.retired]
    lines += [f"! {p.code} {p.path}: {p.message}" for p in plan.problems]
    return lines


def _missing_targets(desired: DesiredSchema, available: set[str]) -> list[Problem]:
    own = {table.name for table in desired.tables}
    return [
        Problem(
            code="storage.unknown-relation-target",
            path=path,
            message=f"relation target table {target!r} does not exist",
            hint="publish the target form first, or in the same publish",
        )
        for path, target in sorted(desired.targets.items())
        if target not in own and target not in available
    ]


# --- applying and describing -----------------------------------------------------------------


def _detached(
    column: sa.Column[Any], *, keep: Callable[[str], bool] = lambda _target: True
) -> sa.Column[Any]:
    """A copy of `column` bound to no table (Alembic adds it), with the references `keep` likes."""
    references = [
        sa.ForeignKey(fk.target_fullname, ondelete=fk.ondelete)
        for fk in column.foreign_keys
        if keep(_target_table(fk))
    ]
    identity = [sa.Identity()] if column.identity is not None else []
    return sa.Column(
        column.name,
        column.type,
        *references,
        *identity,
        primary_key=column.primary_key,
        nullable=column.nullable,
        server_default=column.server_default,
    )


def _target_table(fk: sa.ForeignKey) -> str:
    return fk.target_fullname.rsplit(".", 1)[0]


def _create_tables(operations: Operations, tables: list[sa.Table], existing: set[str]) -> None:
    """Create `tables`; on PostgreSQL, references to tables created later are added after."""
    deferred: list[tuple[str, sa.ForeignKey]] = []
    lenient = operations.get_context().dialect.name == "sqlite"  # checks references lazily
    for table in tables:
        available = existing | {table.name}
        if lenient:
            operations.invoke(ops.CreateTableOp.from_table(table))
        else:
            columns = [_detached(c, keep=available.__contains__) for c in table.columns]
            operations.invoke(ops.CreateTableOp(table.name, columns))
            deferred += [
                (table.name, fk) for fk in table.foreign_keys if _target_table(fk) not in available
            ]
        existing.add(table.name)
    for source, fk in deferred:
        operations.create_foreign_key(
            None,
            source,
            _target_table(fk),
            [fk.parent.name],
            [fk.column.name],
            ondelete=fk.ondelete,
        )


def _order_by_relations(app: str, forms: Sequence[Any]) -> list[Any]:
    """`forms` with relation targets first where the graph allows (cycles keep input order)."""
    by_table = {form_table_name(app, str(form.key)): form for form in forms}
    ordered: list[Any] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in visiting or by_table[name] in ordered:
            return
        visiting.add(name)
        desired = build_desired_schema(app, by_table[name], forms)
        for target in sorted(set(desired.targets.values())):
            if target in by_table:
                visit(target)
        ordered.append(by_table[name])

    for name in by_table:
        visit(name)
    return ordered


def _apply_add_column(operations: Operations, step: AddColumn) -> None:
    add_column(operations, step.table, _detached(step.column))


def _apply_move_to_links(operations: Operations, step: MoveToLinks) -> None:
    move_to_links(operations.get_bind(), step)


def _apply_create_index(operations: Operations, step: CreateIndex) -> None:
    operations.invoke(ops.CreateIndexOp.from_index(step.index))


_APPLIERS: dict[type[Any], Callable[[Operations, Any], None]] = {
    AddColumn: _apply_add_column,
    CreateIndex: _apply_create_index,
    ChangeType: apply_change,
    MoveToLinks: _apply_move_to_links,
}


def _column_line(table: str, column: sa.Column[Any], dialect: Dialect) -> str:
    return f"+ column {table}.{column.name} {column.type.compile(dialect)}"


def _describe_table(step: CreateTable, dialect: Dialect) -> list[str]:
    table = step.table
    fields = [c for c in table.columns if c.name not in SYSTEM_COLUMNS]
    return [f"+ table {table.name}"] + [_column_line(table.name, c, dialect) for c in fields]


def _describe_column(step: AddColumn, dialect: Dialect) -> list[str]:
    return [_column_line(step.table, step.column, dialect)]


def _describe_index(step: CreateIndex, _dialect: Dialect) -> list[str]:
    kind = "unique index" if step.index.unique else "index"
    columns = ", ".join(column.name for column in step.index.columns)
    return [f"+ {kind} {step.index.name} on {step.index.table}({columns})"]


def _describe_change(step: ChangeType, dialect: Dialect) -> list[str]:
    old_spec = step.target.old_spec
    kinds = (
        f"{field_type(old_spec) if old_spec else step.old_kind} -> {field_type(step.target.spec)}"
    )
    where = f"{step.table}.{step.column.name}"
    if not step.alters:
        return [f"~ column {where} values checked ({kinds}; type kept)"]
    old, new = step.old_type.compile(dialect), step.column.type.compile(dialect)
    kept = f"; old column kept as {step.keep_old_as}" if step.keep_old_as else ""
    return [f"~ column {where} {old} -> {new} ({kinds}; every value converted{kept})"]


def _describe_move(step: MoveToLinks, _dialect: Dialect) -> list[str]:
    return [f"~ column {step.table}.{step.column} ids copied to link table {step.link_table}"]


_DESCRIBERS: dict[type[Any], Callable[[Any, Dialect], list[str]]] = {
    CreateTable: _describe_table,
    AddColumn: _describe_column,
    CreateIndex: _describe_index,
    ChangeType: _describe_change,
    MoveToLinks: _describe_move,
}


__all__ = [
    "DDL_FAILED",
    "FROM_DATABASE",
    "SYSTEM_COLUMNS",
    "AddColumn",
    "ChangeType",
    "CreateIndex",
    "CreateTable",
    "FormTablePlan",
    "FormTables",
    "MoveToLinks",
    "RetireColumn",
    "Step",
    "apply_form_table_plan",
    "apply_form_table_plans",
    "describe",
    "form_tables",
    "plan_form_table",
    "plan_form_tables",
    "purge_columns",
]
