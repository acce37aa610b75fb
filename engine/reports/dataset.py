"""A report's dataset: the base form's table joined along relations and subforms.

`Dataset` resolves field paths (`priority`, `customer.tier`, `items.qty`, `site_address.province`,
a lookup) to row-level SQL columns, and records which joins those columns need and which
(form, field) pairs they read, so the runner can check field masks and put each joined form's
read scope into its ON clause. Nothing here depends on the actor: a `Dataset` is compiled once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, Problem
from engine.forms import fields as f
from engine.forms.listing import (
    BOOLEAN,
    CHOICE,
    CHOICES,
    DATE,
    DATETIME,
    ID,
    IDS,
    LINKS,
    NUMBER,
    TEXT,
    TIME,
    resolve_field,
)
from engine.forms.spec import FormSpec
from engine.reports.spec import Dataset as DatasetSpec
from engine.storage.form_tables import FormTables, form_tables

if TYPE_CHECKING:
    from engine.reports.exists import ExistsTest

UNKNOWN_FIELD = "report.unknown-field"
BAD_JOIN = "report.bad-join"
Sql = ColumnElement[Any]
# What a path's value is, for type checks and result column types.
SCALAR_FAMILIES = frozenset((TEXT, CHOICE, NUMBER, DATE, DATETIME, TIME, BOOLEAN, ID))
EXISTS_KIND = "exists"  # a source of an exists test: read-checked and scoped, not joined


@dataclass(frozen=True, slots=True)
class Source:
    """The base form or one join: a table alias and the fields it holds.

    `form` is the form whose permissions apply (a subform's rows belong to its parent form);
    `prefix` is the subform path inside `form`'s `field_columns` ("items." or "").
    """

    name: str
    form: str
    spec: Any  # something with field_map(): a FormSpec or a subform's fields
    tables: FormTables
    table: Any  # the table or its alias in the FROM clause
    prefix: str = ""
    parent: str | None = None
    on: Callable[[Any, Any], Sql] | None = None  # (parent table, this table) -> ON condition
    kind: str = "left"
    soft_deleted: bool = True
    via_field: str | None = None  # the relation or subform field of the parent it follows


@dataclass(frozen=True, slots=True)
class Column:
    """One resolved field path: its SQL, family, the sources it needs and the fields it reads."""

    path: str
    sql: Sql
    family: str
    sources: tuple[str, ...]
    reads: tuple[tuple[str, str], ...]  # (form, field key) pairs the field mask must allow


@dataclass
class Dataset:
    """Sources by name, in join order; `columns()` resolves paths, adding implicit joins."""

    app: str
    forms: Mapping[str, FormSpec]
    base: Source
    sources: dict[str, Source] = field(default_factory=dict)
    explicit: tuple[str, ...] = ()
    include_deleted: bool = False
    alias_prefix: str = "j_"  # an exists test's joins get their own (engine/reports/exists.py)
    exists: dict[str, ExistsTest] = field(default_factory=dict)

    def resolve(self, path: str, *, where: str) -> Column:
        """The column of `path`; raises `report.unknown-field` at JSON pointer `where`."""
        if path in self.exists:
            return self.exists[path].column
        head, _, rest = path.partition(".")
        if rest and head in self.sources and head != self.base.name:
            found = self._in_source(self.sources[head], rest, path)
        else:
            found = self._in_source(self.base, path, path)
        if found is None:
            raise _problem(UNKNOWN_FIELD, where, f"unknown or unusable field {path!r}")
        return found

    def _in_source(self, source: Source, name: str, path: str) -> Column | None:
        ref = resolve_field(cast(FormSpec, source.spec), name, self.forms)
        if ref is None or ref.family in (LINKS, CHOICES, IDS):
            return None
        owner, reads = source, [(source.form, source.prefix + name.split(".", 1)[0])]
        if ref.system:
            reads = []
        if ref.via is not None:
            owner = self._implicit(source, ref.via, str(ref.target_form))
            if not ref.system:
                reads.append((owner.form, ref.column))
        if ref.system:
            column = owner.table.c[ref.column]
        elif ref.part is not None:
            column = owner.table.c[f"{ref.column}__{ref.part}"]
        else:
            column = owner.table.c[owner.tables.field_columns[owner.prefix + ref.column][0]]
        sources = tuple(self._chain(owner.name))
        return Column(path, column, ref.family, sources, tuple(reads))

    def _chain(self, name: str) -> list[str]:
        chain: list[str] = []
        current: str | None = name
        while current is not None and current != self.base.name:
            chain.insert(0, current)
            current = self.sources[current].parent
        return chain

    def _implicit(self, source: Source, relation: str, target: str) -> Source:
        name = f"{source.name}.{relation}" if source is not self.base else relation
        existing = self.sources.get(name)
        if existing is not None and existing.via_field == relation:
            return existing
        name = f"_{name}"
        if name not in self.sources:
            self.sources[name] = self._relation_source(name, source, relation, target, "left")
        return self.sources[name]

    def _relation_source(
        self, name: str, parent: Source, relation: str, target: str, kind: str
    ) -> Source:
        tables = self._tables(target)
        alias = tables.main.alias(self._alias_name(name))
        column = parent.tables.field_columns[parent.prefix + relation][0]

        def on(parent_table: Any, table: Any) -> Sql:
            return cast(Sql, table.c.id == parent_table.c[column])

        return Source(
            name, target, self.forms[target], tables, alias, parent=parent.name, on=on,
            kind=kind, via_field=relation,
        )  # fmt: skip

    def _tables(self, form: str) -> FormTables:
        return shared_form_tables(self.app, self.forms[form], self.forms)

    def add_join(self, relation: str, alias: str | None, kind: str, where: str) -> None:
        """Follow `relation` (a field of the base, or `alias.field`) as source `alias`."""
        head, _, rest = relation.partition(".")
        parent, name = (self.sources[head], rest) if rest and head in self.sources else (
            self.base, relation)  # fmt: skip
        spec = parent.spec.field_map().get(name)
        alias = alias or relation.replace(".", "_")
        if alias in self.sources:
            raise _problem(BAD_JOIN, where, f"join alias {alias!r} is used twice")
        if isinstance(spec, f.RelationField) and not spec.multiple and str(spec.form) in self.forms:
            source = self._relation_source(alias, parent, name, str(spec.form), kind)
        elif isinstance(spec, f.SubformField) and parent.prefix == "":
            source = self._subform_source(alias, parent, name, kind)
        else:
            message = f"{relation!r} is not a single relation or a subform of the dataset"
            raise _problem(BAD_JOIN, where, message)
        self.sources[alias] = source
        self.explicit = (*self.explicit, alias)

    def _subform_source(self, alias: str, parent: Source, name: str, kind: str) -> Source:
        child = parent.tables.children[name]
        table = child.alias(self._alias_name(alias))
        spec = parent.spec.field_map()[name]

        def on(parent_table: Any, table: Any) -> Sql:
            return cast(Sql, table.c.parent_id == parent_table.c.id)

        return Source(
            alias, parent.form, _Fields(spec.fields), parent.tables, table, prefix=f"{name}.",
            parent=parent.name, on=on, kind=kind, soft_deleted="deleted_at" in child.c,
            via_field=name,
        )  # fmt: skip

    def _alias_name(self, name: str) -> str:
        return self.alias_prefix + name.strip("_").replace(".", "_")

    def from_clause(self, needed: set[str], on_extra: Mapping[str, list[Sql]]) -> Any:
        """The base table joined with the explicit joins and the implicit ones in `needed`
        (an exists test's sources are in its subquery, never joined here)."""
        joined: Any = self.base.table
        for name, source in self.sources.items():
            if name == self.base.name or (name not in self.explicit and name not in needed):
                continue
            if source.kind == EXISTS_KIND:
                continue
            assert source.on is not None and source.parent is not None
            parent = self.sources[source.parent].table
            conditions = [source.on(parent, source.table), *on_extra.get(name, [])]
            if source.soft_deleted and not self.include_deleted and source.prefix == "":
                conditions.append(source.table.c.deleted_at.is_(None))
            condition = sa.and_(*conditions)
            joined = (
                joined.join(source.table, condition)
                if source.kind == "inner"
                else joined.outerjoin(source.table, condition)
            )
        return joined


class _Fields:
    """A subform's fields behind the `field_map()` that field resolution reads."""

    def __init__(self, fields: Any) -> None:
        self._map = {item.key: item for item in fields}

    def field_map(self) -> dict[str, Any]:
        return self._map


_TABLES: OrderedDict[tuple[Any, ...], tuple[tuple[FormSpec, ...], FormTables]] = OrderedDict()
_TABLES_LOCK = threading.Lock()
MAX_TABLES = 256


def shared_form_tables(app: str, form: FormSpec, forms: Mapping[str, FormSpec]) -> FormTables:
    """`form_tables` of `form` among `forms`, built once per set of form specs: building the
    SQLAlchemy tables was most of a cold dashboard's compile time (bench/RESULTS.md). The
    tables are only read (joins alias them), so reports share them. The entry keeps the specs
    alive, so the ids in its key cannot be reused by other objects while it is cached."""
    related = tuple(forms.values())
    key = (app, form.key, id(form), tuple(id(spec) for spec in related))
    with _TABLES_LOCK:
        found = _TABLES.get(key)
        if found is not None:
            _TABLES.move_to_end(key)
            return found[1]
    tables = form_tables(app=app, form=form, related_forms=list(related))
    with _TABLES_LOCK:
        _TABLES[key] = (related, tables)
        while len(_TABLES) > MAX_TABLES:
            _TABLES.popitem(last=False)
    return tables


def _problem(code: str, path: str, message: str) -> DefinitionError:
    return DefinitionError([Problem(code=code, path=path, message=message)])


def build_dataset(
    spec: DatasetSpec, *, app: str, forms: Mapping[str, FormSpec], dialect: str | None = None
) -> Dataset:
    """The dataset of a report: checks the form, every join and exists test (errors under
    /dataset). `dialect` is the SQL of the exists tests (None: SQLite's, for checks only)."""
    key = str(spec.form)
    key = key.split(".", 1)[1] if key.startswith(f"{app}.") else key
    if key not in forms:
        raise _problem(UNKNOWN_FIELD, "/dataset/form", f"unknown form {spec.form!r}")
    tables = shared_form_tables(app, forms[key], forms)
    base = Source("", key, forms[key], tables, tables.main)
    dataset = Dataset(app, forms, base, {"": base}, include_deleted=spec.include_deleted)
    for index, join in enumerate(spec.joins):
        dataset.add_join(join.relation, join.alias, join.kind, f"/dataset/joins/{index}")
    if spec.exists:
        from engine.reports.exists import add_exists

        add_exists(dataset, spec.exists, dialect=dialect or "sqlite")
    return dataset


__all__ = ["BAD_JOIN", "SCALAR_FAMILIES", "UNKNOWN_FIELD", "Column", "Dataset", "Source",
           "build_dataset"]  # fmt: skip
