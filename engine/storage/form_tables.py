"""The schema synchroniser, first cut: form definition → real tables, as a plan, then applied.

A plan is additive only: it creates tables, adds columns and indexes. A field that disappeared
from the definition is reported as retired and its column kept; a changed type is a problem.
Plans are applied with Alembic operations inside the caller's transaction.
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

from engine.errors import DefinitionError, Problem
from engine.storage._form_schema import DesiredSchema, build_desired_schema
from engine.storage.conflicts import translating_conflicts
from engine.storage.names import form_table_name
from engine.storage.tables import NAMING_CONVENTION

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


Step = CreateTable | AddColumn | CreateIndex


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
) -> FormTablePlan:
    """Compare `form` with the database and list the steps that make its tables match.

    Args:
        planned_tables: tables that other plans of the same publish create first (relation
            targets that do not exist yet).
        related_forms: other forms of the app, to see which side of a two-way relation stores
            it (a multiple relation with `inverse` stores nothing when the target is unknown).
    """
    desired = build_desired_schema(app, form, related_forms)
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    context = MigrationContext.configure(conn)
    steps: list[Step] = []
    retired: list[RetireColumn] = []
    problems = list(desired.problems)
    problems += _missing_targets(desired, existing | set(planned_tables))
    for table in desired.tables:
        if table.name not in existing:
            steps.append(CreateTable(table))
            steps += [CreateIndex(index) for index in _sorted_indexes(table)]
            continue
        found = _diff_table(inspector, context, table, desired)
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
        ConflictError: the data refuses a step (e.g. duplicates under a new unique index).
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
    with translating_conflicts():
        _create_tables(operations, creates, set(sa.inspect(conn).get_table_names()))
        for step in steps:
            if not isinstance(step, CreateTable):
                _APPLIERS[type(step)](operations, step)


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


def _sorted_indexes(table: sa.Table) -> list[sa.Index]:
    return sorted(table.indexes, key=lambda index: str(index.name))


# --- comparing with the database -------------------------------------------------------------


def _diff_table(
    inspector: sa.Inspector, context: MigrationContext, table: sa.Table, desired: DesiredSchema
) -> tuple[list[Step], list[RetireColumn], list[Problem]]:
    reflected = {column["name"]: column for column in inspector.get_columns(table.name)}
    steps: list[Step] = []
    problems: list[Problem] = []
    for column in table.columns:
        found = reflected.get(column.name)
        if found is None:
            steps.append(AddColumn(table.name, column))
        elif context.impl.compare_type(sa.Column(column.name, found["type"]), column):
            problems.append(_type_change(table, column, found["type"], desired, context.dialect))
    retired = [
        RetireColumn(table.name, name)
        for name in reflected
        if name not in table.c and (table.name, name) not in desired.kept
    ]
    index_names = {i["name"] for i in inspector.get_indexes(table.name)}
    index_names |= {u["name"] for u in inspector.get_unique_constraints(table.name)}
    steps += [CreateIndex(i) for i in _sorted_indexes(table) if i.name not in index_names]
    return steps, retired, problems


def _type_change(
    table: sa.Table,
    column: sa.Column[Any],
    found: sa.types.TypeEngine[Any],
    desired: DesiredSchema,
    dialect: Dialect,
) -> Problem:
    path = desired.owners.get((table.name, column.name), "")
    old, new = found.compile(dialect), column.type.compile(dialect)
    return Problem(
        code="storage.type-change-unsupported",
        path=f"{path}/type" if path else "",
        message=f"column {table.name}.{column.name} is {old}; the definition needs {new}",
        hint="keep the old type, or add a new field and retire this one",
    )


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
    column = _detached(step.column)
    if operations.get_context().dialect.name != "sqlite":
        operations.invoke(ops.AddColumnOp(step.table, column))
        return
    # SQLite adds columns (and inline REFERENCES) in place; recreating the table instead would
    # DROP it, which with foreign keys on deletes the rows of its subform tables.
    with operations.batch_alter_table(step.table, recreate="never") as batch:
        batch.add_column(column, inline_references=True)


def _apply_create_index(operations: Operations, step: CreateIndex) -> None:
    operations.invoke(ops.CreateIndexOp.from_index(step.index))


_APPLIERS: dict[type[Any], Callable[[Operations, Any], None]] = {
    AddColumn: _apply_add_column,
    CreateIndex: _apply_create_index,
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


_DESCRIBERS: dict[type[Any], Callable[[Any, Dialect], list[str]]] = {
    CreateTable: _describe_table,
    AddColumn: _describe_column,
    CreateIndex: _describe_index,
}


__all__ = [
    "SYSTEM_COLUMNS",
    "AddColumn",
    "CreateIndex",
    "CreateTable",
    "FormTablePlan",
    "FormTables",
    "RetireColumn",
    "Step",
    "apply_form_table_plan",
    "apply_form_table_plans",
    "describe",
    "form_tables",
    "plan_form_table",
    "plan_form_tables",
]
