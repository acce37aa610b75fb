"""The schema synchroniser, first cut: form definition → real tables, as a plan, then applied.

A plan is additive only: it creates tables, adds columns and indexes. A field that disappeared
from the definition is reported as retired and its column kept; a changed type is a problem.
Plans are applied with Alembic operations inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Dialect

from engine.errors import DefinitionError, Problem
from engine.storage._form_columns import (
    ALWAYS_UNIQUE,
    BuildContext,
    ChildTable,
    build_field_storage,
)
from engine.storage.conflicts import translating_conflicts
from engine.storage.names import form_table_name, index_name, unique_index_name
from engine.storage.sqltypes import RowId, UtcDateTime
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
LIVE_ROWS = "deleted_at IS NULL"


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
class _Desired:
    """The tables a form needs, and which JSON pointer owns each (table, column)."""

    metadata: sa.MetaData
    tables: tuple[sa.Table, ...]
    owners: dict[tuple[str, str], str]
    kept: frozenset[tuple[str, str]]
    targets: dict[str, str]
    problems: tuple[Problem, ...]


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
    desired = _build_desired(app, form, related_forms)
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


# --- the desired tables ----------------------------------------------------------------------


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

    def resolve(self, form_ref: str) -> str:
        return form_table_name(self.app, form_ref)

    def find_field(self, form_ref: str, key: str) -> Any | None:
        return self.fields.get((self.resolve(form_ref), key))

    def table(
        self, name: str, base: list[sa.Column[Any]], fields: Sequence[Any], prefix: str
    ) -> tuple[sa.Table, dict[str, list[str]]]:
        """Build table `name`; returns it and the column names of each field key."""
        columns = {column.name: column for column in base}
        reserved = set(columns)
        by_field: dict[str, list[str]] = {}
        unique: list[list[str]] = []
        indexed: list[str] = []
        children: list[tuple[ChildTable, str]] = []
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
            by_field[str(spec.key)] = names
            if names and (getattr(spec, "unique", False) or str(spec.type) in ALWAYS_UNIQUE):
                unique.append(names)
            indexed += storage.indexed
            children += [(child, path) for child in storage.children]
        table = sa.Table(name, self.metadata, *columns.values())
        self.tables.append(table)
        self._add_indexes(table, unique, indexed)
        for child, path in children:
            self._child(child, path)
        return table, by_field

    def _child(self, child: ChildTable, path: str) -> None:
        for column in child.columns:
            for fk in column.foreign_keys:
                if fk.target_fullname.split(".")[0] != self.tables[0].name:
                    self.targets[f"{path}/form"] = fk.target_fullname.split(".")[0]
        table, _ = self.table(child.name, list(child.columns), child.fields, f"{path}/fields")
        for column in child.columns:
            if column.name in ("parent_id", "target_id"):
                _add_index(table, [column.name])

    def _add_indexes(self, table: sa.Table, unique: list[list[str]], indexed: list[str]) -> None:
        soft_deleted = "deleted_at" in table.c
        where: dict[str, Any] = {
            "sqlite_where": sa.text(LIVE_ROWS),
            "postgresql_where": sa.text(LIVE_ROWS),
        }
        for names in unique:
            # Soft-deleted records must not block a new record with the same value.
            extra: dict[str, Any] = where if soft_deleted else {}
            _add_index(table, names, unique=True, **extra)
        for column_name in indexed:
            _add_index(table, [column_name])

    def _problem(self, code: str, path: str, spec: Any, detail: str = "") -> None:
        messages = {
            "storage.unknown-field-type": f"no storage for field type {spec.type!r}",
            "storage.duplicate-column": f"column {detail!r} of field {spec.key!r} is taken",
            "storage.reserved-column": f"column {detail!r} is a system column",
        }
        self.problems.append(Problem(code=code, path=path, message=messages[code]))


def _build_desired(app: str, form: Any, related_forms: Sequence[Any] = ()) -> _Desired:
    builder = _TableBuilder(app, related_forms)
    fields = tuple(getattr(form, "fields", ()))
    main, by_field = builder.table(
        form_table_name(app, str(form.key)), _system_columns(), fields, "/fields"
    )
    _add_form_constraints(main, by_field, form)
    _add_stub_tables(builder.metadata)
    return _Desired(
        metadata=builder.metadata,
        tables=tuple(builder.tables),
        owners=builder.owners,
        kept=frozenset(builder.kept),
        targets=builder.targets,
        problems=tuple(builder.problems),
    )


def _add_form_constraints(table: sa.Table, by_field: dict[str, list[str]], form: Any) -> None:
    """Composite `unique` and `indexes` of the form (lists of field keys)."""
    where: dict[str, Any] = {
        "sqlite_where": sa.text(LIVE_ROWS),
        "postgresql_where": sa.text(LIVE_ROWS),
    }
    for keys, unique in [(k, True) for k in getattr(form, "unique", ())] + [
        (k, False) for k in getattr(form, "indexes", ())
    ]:
        names = [name for key in keys for name in by_field.get(str(key), [])]
        if not names:
            continue
        if unique:
            _add_index(table, names, unique=True, **where)
        else:
            _add_index(table, names)


def _add_index(table: sa.Table, names: list[str], *, unique: bool = False, **kw: Any) -> None:
    """Index `names` once: a field index and a form index on the same columns are one index."""
    covered = {tuple(c.name for c in index.columns) for index in table.indexes}
    if tuple(names) in covered:
        return
    name = unique_index_name(table.name, names) if unique else index_name(table.name, names)
    sa.Index(name, *(table.c[n] for n in names), unique=unique, **kw)


def _add_stub_tables(metadata: sa.MetaData) -> None:
    """Placeholder tables for foreign-key targets outside the form, so DDL can compile."""
    for table in list(metadata.tables.values()):
        for fk in table.foreign_keys:
            target = fk.target_fullname.split(".")[0]
            if target not in metadata.tables:
                id_type = sa.Integer() if target in ("users", "departments") else RowId
                sa.Table(target, metadata, sa.Column("id", id_type, primary_key=True))


def _missing_targets(desired: _Desired, available: set[str]) -> list[Problem]:
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
    inspector: sa.Inspector, context: MigrationContext, table: sa.Table, desired: _Desired
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
    desired: _Desired,
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
        desired = _build_desired(app, by_table[name], forms)
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
    "RetireColumn",
    "Step",
    "apply_form_table_plan",
    "apply_form_table_plans",
    "describe",
    "plan_form_table",
    "plan_form_tables",
]
