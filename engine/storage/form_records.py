"""`FormRecordStore`: the records of one form in its real tables (SQLAlchemy Core).

Clean values (as `validate_submission` returns them) go to typed columns, subform rows to the
child table and multiple relations to the link table, all on the caller's connection, so the
caller's transaction covers the record and its rows. Lookups and rollups are read through SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import sqlalchemy as sa

from engine.errors import ConflictError, NotFoundError, SubmissionError
from engine.storage._record_batch import autonumber_block, insert_children, insert_ids
from engine.storage._record_integrity import clear_references, referencing_records
from engine.storage._record_layout import (
    BACKREF,
    COMPUTED,
    LINKS,
    PARTS,
    STORED,
    SUBFORM,
    RecordLayout,
    Slot,
    build_record_layout,
)
from engine.storage._record_relations import (
    MISSING_RELATION,
    RELATION_FILTERED,
    check_relations,
    relation_errors,
)
from engine.storage._record_sql import computed_columns, target_tables
from engine.storage._record_values import (
    autonumber_period,
    computed_values,
    format_autonumber,
    labelled,
    row_values,
    to_columns,
    written_children,
)
from engine.storage.conflicts import UNIQUE, translate_integrity_error
from engine.storage.record_meta import RecordMetaStore
from engine.storage.sqltypes import utc_now

STALE_VERSION = "record.stale-version"
UNIQUE_VIOLATION = "record.unique-violation"
DELETE_REFUSED = "record.delete-refused"
NOT_FOUND = "record.not-found"
NOT_DELETED = "record.not-deleted"
SYSTEM_FIELDS = (
    "id",
    "version",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "owner_id",
    "deleted_at",
)


class RecordConflict(ConflictError):
    """A write refused because of other data: `path` names the field, `records` the others."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        path: str | None = None,
        records: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message, code=code)
        self.path = path
        self.records = tuple(records)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record: system columns and field values (subforms as lists of row dicts)."""

    id: int
    version: int
    created_at: datetime
    created_by: int | None
    updated_at: datetime
    updated_by: int | None
    owner_id: int | None
    deleted_at: datetime | None
    values: dict[str, Any]


class FormRecordStore:
    """Insert, update, read, soft-delete and restore the records of one form."""

    def __init__(
        self,
        conn: sa.Connection,
        *,
        layout: RecordLayout,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._conn = conn
        self._layout = layout
        self._clock = clock
        self._meta = RecordMetaStore(conn, app=layout.app, form=layout.form, clock=clock)

    @property
    def layout(self) -> RecordLayout:
        return self._layout

    @property
    def conn(self) -> sa.Connection:
        return self._conn

    # --- writes -------------------------------------------------------------------------------

    def insert(self, *, values: Mapping[str, Any], actor: int | None) -> int:
        """Store a new record (autonumbers allocated here) and return its id."""
        now = self._clock()
        values = {**values, **self._autonumbers(now)}
        self._check_relations(values)
        main = self._layout.main
        row = self._main_columns(values)
        row.update(created_at=now, updated_at=now, created_by=actor, updated_by=actor)
        row.update(owner_id=actor, version=1)
        record_id = int(self._execute(sa.insert(main).returning(main.c.id), row).scalar_one())
        self._write_children(record_id, values, replace=False)
        return record_id

    def insert_many(self, *, records: Sequence[Mapping[str, Any]], actor: int | None) -> list[int]:
        """Store new records with a statement per table (autonumbers in one block); their ids
        in order. Check relations first with `relation_errors`: this does not. All or none
        under the caller's savepoint; a unique violation is a `RecordConflict` for the batch."""
        if not records:
            return []
        now = self._clock()
        numbers = autonumber_block(self._conn, self._layout, now, len(records))
        full = [
            {**values, **{key: texts[i] for key, texts in numbers.items()}}
            for i, values in enumerate(records)
        ]
        stamp = {"created_at": now, "updated_at": now, "created_by": actor, "updated_by": actor}
        stamp.update(owner_id=actor, version=1)
        rows = [{**self._main_columns(values), **stamp} for values in full]
        ids = insert_ids(self._conn, self._execute_many, self._layout.main, rows)
        insert_children(self._conn, self._execute_many, self._layout, ids, full)
        return ids

    def relation_errors(self, records: Sequence[Mapping[str, Any]]) -> dict[int, SubmissionError]:
        """Per position, the `SubmissionError` of new records' missing or filtered relations."""
        return relation_errors(self._conn, self._layout, records, now=self._clock())

    def update(
        self,
        *,
        record_id: int,
        version: int,
        changes: Mapping[str, Any],
        actor: int | None,
        record: Mapping[str, Any] | None = None,
    ) -> int:
        """Apply `changes` (field key → new clean value) if the record is still at `version`.

        `record` is the whole record after the change (relation filters read it); by default
        only `changes` are known.

        Raises:
            RecordConflict: `record.stale-version`, or a unique or relation conflict.
            NotFoundError: no live record `record_id`.
        """
        self._check_relations(changes, record)
        main = self._layout.main
        row = self._main_columns(changes)
        row.update(updated_at=self._clock(), updated_by=actor, version=main.c.version + 1)
        statement = (
            sa.update(main)
            .where(main.c.id == record_id, main.c.version == version, main.c.deleted_at.is_(None))
            .values(row)
        )
        if self._execute(statement).rowcount != 1:
            self._raise_not_updated(record_id, version)
        self._write_children(record_id, changes, replace=True)
        return version + 1

    def soft_delete(self, *, record_id: int, actor: int | None, version: int | None = None) -> int:
        """Mark the record deleted after applying `on_delete` of every relation to it."""
        self._apply_references(record_id, actor)
        main = self._layout.main
        where = [main.c.id == record_id, main.c.deleted_at.is_(None)]
        if version is not None:
            where.append(main.c.version == version)
        return self._bump(where, record_id, version, deleted_at=self._clock(), actor=actor)

    def restore(self, *, record_id: int, actor: int | None) -> int:
        """Bring a soft-deleted record back (its unique values must still be free)."""
        main = self._layout.main
        where = [main.c.id == record_id, main.c.deleted_at.is_not(None)]
        return self._bump(where, record_id, None, deleted_at=None, actor=actor)

    def _bump(
        self,
        where: list[sa.ColumnElement[bool]],
        record_id: int,
        version: int | None,
        *,
        deleted_at: datetime | None,
        actor: int | None,
    ) -> int:
        main = self._layout.main
        statement = (
            sa.update(main)
            .where(*where)
            .values(
                deleted_at=deleted_at,
                version=main.c.version + 1,
                updated_at=self._clock(),
                updated_by=actor,
            )
            .returning(main.c.version)
        )
        new_version = self._execute(statement).scalar_one_or_none()
        if new_version is None:
            self._raise_not_updated(record_id, version, restoring=deleted_at is None)
            raise AssertionError("unreachable")  # _raise_not_updated always raises
        return int(new_version)

    def _raise_not_updated(
        self, record_id: int, version: int | None, *, restoring: bool = False
    ) -> NoReturn:
        main = self._layout.main
        found = self._conn.execute(
            sa.select(main.c.version, main.c.deleted_at).where(main.c.id == record_id)
        ).one_or_none()
        name = f"{self._layout.form} record {record_id}"
        if found is None or (found.deleted_at is not None and not restoring):
            raise NotFoundError(f"no {name}", code=NOT_FOUND)
        if restoring and found.deleted_at is None:
            raise RecordConflict(f"{name} is not deleted", code=NOT_DELETED)
        raise RecordConflict(
            f"{name} is at version {found.version}, not {version}", code=STALE_VERSION
        )

    def _execute(
        self, statement: sa.Executable, parameters: dict[str, Any] | None = None
    ) -> sa.CursorResult[Any]:
        # Values go in as parameters, not `.values()`: the compiled statement is then cached.
        try:
            return self._conn.execute(statement, parameters)
        except sa.exc.IntegrityError as err:
            raise self._integrity_conflict(err) from err

    def _execute_many(
        self, statement: sa.Executable, rows: list[dict[str, Any]]
    ) -> sa.CursorResult[Any]:
        try:
            return self._conn.execute(statement, rows)
        except sa.exc.IntegrityError as err:
            raise self._integrity_conflict(err) from err

    def _integrity_conflict(self, err: sa.exc.IntegrityError) -> ConflictError:
        conflict = translate_integrity_error(err)
        keys = self._layout.unique.get(conflict.constraint or "")
        if conflict.code != UNIQUE or not keys:
            return conflict
        path = "/".join(keys[0].split("."))
        names = ", ".join(keys)
        return RecordConflict(
            f"another record already has this value of {names}", code=UNIQUE_VIOLATION, path=path
        )

    def _main_columns(self, values: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for slot in self._layout.slots:
            if slot.key in values and slot.kind in (STORED, PARTS):
                row.update(to_columns(slot, values[slot.key]))
        return row

    def _autonumbers(self, now: datetime) -> dict[str, str]:
        out: dict[str, str] = {}
        for slot in self._layout.slots:
            if slot.kind == STORED and str(slot.spec.type) == "autonumber":
                reset = str(getattr(slot.spec, "reset", "never"))
                period = autonumber_period(reset, now)
                number = self._meta.next_number(field=slot.key, period=period)
                out[slot.key] = format_autonumber(str(slot.spec.pattern), now, number)
        return out

    # --- child rows and links -----------------------------------------------------------------

    def _write_children(self, record_id: int, values: Mapping[str, Any], *, replace: bool) -> None:
        for slot in self._layout.slots:
            if slot.key not in values or slot.table is None:
                continue
            if slot.kind == SUBFORM:
                self._write_rows(slot, record_id, values[slot.key] or [], replace)
            elif slot.kind == LINKS:
                self._write_links(slot.table, record_id, values[slot.key] or [], replace)

    def _write_rows(
        self, slot: Slot, parent_id: int, rows: Sequence[Mapping[str, Any]], replace: bool
    ) -> None:
        table = slot.table
        assert table is not None  # SUBFORM slots always have their child table
        if replace:
            self._conn.execute(sa.delete(table).where(table.c.parent_id == parent_id))
        for position, row in enumerate(rows):
            columns: dict[str, Any] = {"parent_id": parent_id, "position": position}
            for child in slot.rows:
                if child.key in row and child.kind in (STORED, PARTS):
                    columns.update(to_columns(child, row[child.key]))
            child_id = self._execute(sa.insert(table).returning(table.c.id), columns)
            row_id = int(child_id.scalar_one())
            for child in slot.rows:
                if child.kind == LINKS and child.table is not None and child.key in row:
                    self._write_links(child.table, row_id, row[child.key] or [], False)

    def _write_links(
        self, table: sa.Table, source_id: int, ids: Iterable[int], replace: bool
    ) -> None:
        if replace:
            self._conn.execute(sa.delete(table).where(table.c.source_id == source_id))
        rows = [
            {"source_id": source_id, "target_id": target, "position": position}
            for position, target in enumerate(dict.fromkeys(ids))
        ]
        if rows:
            self._insert_many(table, rows)

    def _insert_many(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        try:
            self._conn.execute(sa.insert(table), rows)
        except sa.exc.IntegrityError as err:
            raise self._integrity_conflict(err) from err

    # --- relation targets ---------------------------------------------------------------------

    def _check_relations(
        self, values: Mapping[str, Any], record: Mapping[str, Any] | None = None
    ) -> None:
        check_relations(
            self._conn, self._layout, values, record=record or values, now=self._clock()
        )

    def related_values(self, *, names: Iterable[str], ids: Mapping[str, int]) -> dict[str, Any]:
        """Values of related records that expressions read, in one query.

        `names` are `relation.field` paths and lookup field keys of this form; `ids` the record
        id each single relation points at. Missing or deleted targets give None.
        """
        columns: dict[str, Any] = {}
        found_names: dict[str, str] = {}
        for name in names:
            found = self._related_column(name, ids)
            if found is not None:
                label = f"r{len(columns)}"  # names hold dots: label by position
                columns[label], found_names[label] = found, name
        if not columns:
            return {}
        row = dict(self._conn.execute(sa.select(*labelled(columns))).one()._mapping)
        values = computed_values(columns, row)
        return {found_names[label]: value for label, value in values.items()}

    def _related_column(self, name: str, ids: Mapping[str, int]) -> Any | None:
        slot = self._layout.slot(name.split(".", 1)[0])
        if slot is not None and str(slot.spec.type) == "lookup" and "." not in name:
            relation, field = str(slot.spec.relation), str(slot.spec.field)
        elif slot is not None and slot.kind == STORED and slot.target and "." in name:
            relation, field = name.split(".", 1)
        else:
            return None
        target = target_tables(self._layout, self._layout.by_key[relation].target)
        if target is None or relation not in ids or "." in field:
            return None
        main = target.main
        names = target.field_columns.get(field) or ((field,) if field in main.c else ())
        where = sa.and_(main.c.id == ids[relation], main.c.deleted_at.is_(None))

        def pick(column: str) -> sa.ColumnElement[Any]:
            return sa.select(main.c[column]).where(where).scalar_subquery()

        if len(names) == 1 and names[0] == field:
            return pick(field)
        return {column.split("__", 1)[1]: pick(column) for column in names} or None

    # --- integrity on delete ------------------------------------------------------------------

    def _apply_references(self, record_id: int, actor: int | None) -> None:
        refusing = referencing_records(self._conn, self._layout, record_id)
        if refusing:
            listed = ", ".join(f"{r['form']} {r['id']}" for r in refusing[:10])
            raise RecordConflict(
                f"records refer to this one: {listed}", code=DELETE_REFUSED, records=refusing
            )
        clear_references(self._conn, self._layout, record_id, actor=actor, clock=self._clock)

    # --- reads --------------------------------------------------------------------------------

    def get(
        self,
        *,
        record_id: int,
        include_deleted: bool = False,
        known: Mapping[str, Any] | None = None,
        where: Sequence[Any] = (),
    ) -> StoredRecord:
        """The record `record_id`; soft-deleted ones only with `include_deleted`.

        `known` gives values of child fields the caller just wrote (see `written_children`),
        which are then not read again. `where` adds conditions on the main table (a permission
        scope): a record they exclude is not found, like a missing one.
        """
        found = self.get_many(
            ids=[record_id], include_deleted=include_deleted, known=known, where=where
        )
        if not found:
            raise NotFoundError(f"no {self._layout.form} record {record_id}", code=NOT_FOUND)
        return found[0]

    def get_many(
        self,
        *,
        ids: Sequence[int],
        include_deleted: bool = False,
        known: Mapping[str, Any] | None = None,
        where: Sequence[Any] = (),
    ) -> list[StoredRecord]:
        """The records with these ids that exist (and meet `where`), in the order of `ids`."""
        if not ids:
            return []
        main = self._layout.main
        computed = self._computed(self._layout.slots, main, "")
        query = sa.select(main, *labelled(computed)).where(main.c.id.in_(list(ids)), *where)
        if not include_deleted:
            query = query.where(main.c.deleted_at.is_(None))
        rows = {row.id: dict(row._mapping) for row in self._conn.execute(query)}
        found = [rows[i] for i in dict.fromkeys(ids) if i in rows]
        known = known or {}
        unknown = tuple(slot for slot in self._layout.slots if slot.key not in known)
        extra = self._read_children(unknown, [int(row["id"]) for row in found])
        for key, value in known.items():
            extra[key] = {int(row["id"]): value for row in found}
        return [self._record(row, computed, extra) for row in found]

    def from_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[StoredRecord]:
        """The records of main-table rows the caller has just read (a list page), as `get_many`
        would return them: only the lookups, rollups and child rows are queried."""
        ids = [int(row["id"]) for row in rows]
        if not ids:
            return []
        main = self._layout.main
        computed = self._computed(self._layout.slots, main, "")
        full = [dict(row) for row in rows]
        if computed:
            query = sa.select(main.c.id, *labelled(computed)).where(main.c.id.in_(ids))
            found = {row.id: row._mapping for row in self._conn.execute(query)}
            for row in full:
                row.update(found.get(int(row["id"]), {}))
        extra = self._read_children(self._layout.slots, ids)
        return [self._record(row, computed, extra) for row in full]

    def _computed(self, slots: tuple[Slot, ...], table: sa.Table, scope: str) -> dict[str, Any]:
        dialect = self._conn.dialect.name
        return computed_columns(
            self._layout, slots, table, scope=scope, dialect=dialect, now=self._clock()
        )

    def _record(
        self,
        row: Mapping[str, Any],
        computed: Mapping[str, Any],
        extra: Mapping[str, Mapping[int, Any]],
    ) -> StoredRecord:
        values = row_values(self._layout.slots, row, computed)
        for key, by_id in extra.items():
            values[key] = by_id.get(int(row["id"]), [])
        values = {s.key: values[s.key] for s in self._layout.slots if s.key in values}
        system = {name: row[name] for name in SYSTEM_FIELDS}
        return StoredRecord(**system, values=values)

    def _read_children(
        self, slots: tuple[Slot, ...], ids: list[int]
    ) -> dict[str, dict[int, list[Any]]]:
        """Subform rows, link targets and back references of the records `ids`, by field."""
        out: dict[str, dict[int, list[Any]]] = {}
        if not ids:
            return out
        for slot in slots:
            if slot.kind == SUBFORM and slot.table is not None:
                out[slot.key] = self._read_rows(slot, ids)
            elif slot.kind == LINKS and slot.table is not None:
                out[slot.key] = self._read_links(slot.table, ids)
            elif slot.kind == BACKREF:
                out[slot.key] = self._read_backrefs(slot, ids)
        return out

    def _read_rows(self, slot: Slot, ids: list[int]) -> dict[int, list[Any]]:
        table = slot.table
        assert table is not None
        computed = self._computed(slot.rows, table, f"{slot.key}.")
        query = (
            sa.select(table, *labelled(computed))
            .where(table.c.parent_id.in_(ids))
            .order_by(table.c.parent_id, table.c.position, table.c.id)
        )
        rows = [dict(row._mapping) for row in self._conn.execute(query)]
        links = self._read_children(
            tuple(s for s in slot.rows if s.kind == LINKS), [int(r["id"]) for r in rows]
        )
        out: dict[int, list[Any]] = {}
        for row in rows:
            values = row_values(slot.rows, row, computed)
            for key, by_id in links.items():
                values[key] = by_id.get(int(row["id"]), [])
            values = {s.key: values[s.key] for s in slot.rows if s.key in values}
            out.setdefault(int(row["parent_id"]), []).append(values)
        return out

    def _read_links(self, table: sa.Table, ids: list[int]) -> dict[int, list[Any]]:
        query = (
            sa.select(table.c.source_id, table.c.target_id)
            .where(table.c.source_id.in_(ids))
            .order_by(table.c.source_id, table.c.position, table.c.target_id)
        )
        out: dict[int, list[Any]] = {}
        for source, target in self._conn.execute(query):
            out.setdefault(int(source), []).append(int(target))
        return out

    def _read_backrefs(self, slot: Slot, ids: list[int]) -> dict[int, list[Any]]:
        tables = target_tables(self._layout, slot.target)
        inverse = str(getattr(slot.spec, "inverse", "") or "")
        if tables is None:
            return {}
        main = tables.main
        if inverse in main.c:
            pairs = sa.select(main.c[inverse], main.c.id).where(main.c[inverse].in_(ids))
        elif inverse in tables.children:
            link = tables.children[inverse]
            pairs = (
                sa.select(link.c.target_id, main.c.id)
                .select_from(link.join(main, main.c.id == link.c.source_id))
                .where(link.c.target_id.in_(ids))
            )
        else:
            return {}
        query = pairs.where(main.c.deleted_at.is_(None)).order_by(main.c.id)
        out: dict[int, list[Any]] = {}
        for owner, target in self._conn.execute(query):
            out.setdefault(int(owner), []).append(int(target))
        return out


__all__ = [
    "BACKREF",
    "COMPUTED",
    "LINKS",
    "PARTS",
    "STORED",
    "SUBFORM",
    "DELETE_REFUSED",
    "MISSING_RELATION",
    "NOT_DELETED",
    "NOT_FOUND",
    "RELATION_FILTERED",
    "STALE_VERSION",
    "SYSTEM_FIELDS",
    "UNIQUE_VIOLATION",
    "FormRecordStore",
    "RecordConflict",
    "RecordLayout",
    "StoredRecord",
    "build_record_layout",
    "written_children",
]
