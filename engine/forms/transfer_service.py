"""Record import and export use cases: jobs, the import's transactions, streamed exports.

An import is a job row (`import_jobs`) plus files under `<data_dir>/imports/<job id>/`: the
upload while it runs, and the error report. Every row is coerced leniently, then validated by
`validate_submission` exactly as an API create, and stored through `FormRecordStore` (which
allocates autonumbers) with a history entry, in batches. `all_or_nothing` runs in one
transaction; `valid_rows` commits batch by batch. See docs/import-export.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import sqlalchemy as sa

from engine.errors import ConflictError, EngineError, FieldError, NotFoundError, SubmissionError
from engine.forms.events import ChangeListener, RecordChange, notify_listeners
from engine.forms.record_access import Who, check_lookups, form_access, read_scope, user_id_of
from engine.forms.record_json import field_json
from engine.forms.transfer import (
    BATCH_SIZE,
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    ErrorReport,
    ImportJobState,
    ImportMode,
    ImportProgress,
    ImportRun,
    export_rows,
    field_options,
    iter_file,
    map_columns,
    open_table,
    read_error_report,
    run_import,
    write_csv,
    write_xlsx,
)
from engine.forms.transfer.mapping import exportable_fields
from engine.forms.transfer.readers import Encoding, Table
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, require, require_writable
from engine.registry import DefinitionRegistry, FormDefinition
from engine.storage._record_batch import add_history_many
from engine.storage.form_records import FormRecordStore, build_record_layout
from engine.storage.import_jobs import JOB_NOT_FOUND, ImportJobRecord, ImportJobStore
from engine.storage.sqltypes import utc_now
from engine.storage.uow import UnitOfWork

FileFormat = Literal["csv", "xlsx"]
EXPORT_PAGE = 500
NO_REPORT = "transfer.no-error-report"
INTERNAL_ERROR = "transfer.internal-error"
_WRITABLE = ("column", "parts", "subform", "links")
_JSON_AS_IS = frozenset((str, int, bool))  # clean values whose JSON is themselves (history)


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to read the file and what to do with bad rows."""

    file_format: FileFormat = "csv"
    mode: ImportMode = "all_or_nothing"
    mapping: Mapping[str, str | None] | None = None
    encoding: Encoding = "utf-8"
    sheet: str | None = None
    lang: str = "en"
    delimiter: str = ","

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["mapping"] = dict(self.mapping) if self.mapping else None
        return out


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A streamed export: its media type, a file name and the byte chunks."""

    media_type: str
    file_name: str
    chunks: Iterator[bytes]


class TransferService:
    """Imports and exports of one database's records; owned by the app like the registry."""

    def __init__(
        self,
        *,
        db: sa.Engine,
        registry: DefinitionRegistry,
        data_dir: Path,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = BATCH_SIZE,
        listeners: Sequence[ChangeListener] = (),
    ) -> None:
        self._db = db
        self._listeners = listeners  # told of every imported record (source "import")
        self._registry = registry
        self._dir = Path(data_dir) / "imports"
        self._clock = clock
        self._batch_size = batch_size

    # --- jobs ----------------------------------------------------------------------------------

    def create_import(
        self,
        *,
        app: str,
        form: str,
        upload: IO[bytes],
        file_name: str,
        options: ImportOptions,
        actor: Who,
    ) -> int:
        """Store the upload and a pending job; `run_import` does the work.

        The actor needs `import` and `create` on the form, and every mapped column must be a
        field they may edit (checked on the file's header before the job is saved).

        Raises:
            NotFoundError: the app has no such form.
            PermissionDenied: a missing permission or a column the actor may not write.
        """
        with self._unit() as uow:
            definition = self._registry.form(uow, app=app, key=form)
            access = form_access(uow=uow, who=actor, app=app, form=form)
            require(access, "import")
            require(access, "create")
            jobs = ImportJobStore(uow.conn, clock=self._clock)
            job_id = jobs.create(
                app=app,
                form=form,
                mode=options.mode,
                file_name=file_name,
                options=options.to_json(),
                actor=user_id_of(actor),
            )
            source = self._source_path(job_id, options.file_format)
            source.parent.mkdir(parents=True, exist_ok=True)
            with source.open("wb") as out:
                shutil.copyfileobj(upload, out, 1024 * 1024)
            if not access.is_admin:
                self._require_writable_columns(job_id, options, definition, access, source)
            uow.commit()
        return job_id

    def _require_writable_columns(
        self,
        job_id: int,
        options: ImportOptions,
        definition: FormDefinition,
        access: FormAccess,
        source: Path,
    ) -> None:
        try:
            table = self._open(job_id, options)
            try:
                mapping = map_columns(definition.compiled, table.headers, mapping=options.mapping)
            finally:
                if table.close is not None:
                    table.close()
        except SubmissionError:
            return  # an unreadable file fails in the run, with its problems on the job
        try:
            require_writable(access, [column.field.key for column in mapping.columns])
        except EngineError:
            source.unlink(missing_ok=True)
            raise

    def job(self, *, app: str, form: str, job_id: int, actor: Who = None) -> ImportJobRecord:
        """An import job; a signed-in user other than an admin sees only their own jobs."""
        with self._unit() as uow:
            job = ImportJobStore(uow.conn).get(job_id=job_id, app=app, form=form)
        if isinstance(actor, Actor) and not actor.is_admin and job.created_by != actor.user_id:
            raise NotFoundError(f"no import job {job_id}", code=JOB_NOT_FOUND)
        return job

    def import_file(
        self,
        *,
        app: str,
        form: str,
        upload: IO[bytes],
        file_name: str,
        options: ImportOptions,
        actor: Who,
        on_progress: Callable[[ImportProgress], None] | None = None,
    ) -> ImportJobRecord:
        """Create the job and run it now; returns the finished job."""
        job_id = self.create_import(
            app=app, form=form, upload=upload, file_name=file_name, options=options, actor=actor
        )
        return self.run_import(job_id=job_id, on_progress=on_progress)

    def run_import(
        self, *, job_id: int, on_progress: Callable[[ImportProgress], None] | None = None
    ) -> ImportJobRecord:
        """Run a pending job to the end; the job row says how it went."""
        with self._unit() as uow:
            job = ImportJobStore(uow.conn).get(job_id=job_id)
        options = ImportOptions(**{**job.options, "mapping": job.options.get("mapping")})
        state = ImportJobState().start()
        self._save(job_id, state)
        try:
            state = self._import(job, options, state, on_progress)
        except Exception as err:
            # The job runs unattended (after the HTTP response): never leave it `running`.
            code = err.code if isinstance(err, EngineError) else INTERNAL_ERROR
            problem = FieldError(loc="file", code=code, message=str(err)[:500] or code)
            self._save(job_id, state.fail((problem,), state.progress))
            raise
        finally:
            self._source_path(job_id, options.file_format).unlink(missing_ok=True)
        self._save(job_id, state)
        return self.job(app=job.app, form=job.form, job_id=job_id)

    def error_report(
        self, *, app: str, form: str, job_id: int, file_format: FileFormat, actor: Who = None
    ) -> ExportFile:
        """The failed rows of a job with their errors, as CSV or XLSX.

        Raises:
            NotFoundError: no such job (or another user's), or it has no failed rows.
        """
        self.job(app=app, form=form, job_id=job_id, actor=actor)
        path = self._report_path(job_id)
        if not path.exists():
            raise NotFoundError(f"import job {job_id} has no error report", code=NO_REPORT)
        return _tabular(read_error_report(path), file_format, f"{form}-import-{job_id}-errors")

    # --- the import run ------------------------------------------------------------------------

    def _import(
        self,
        job: ImportJobRecord,
        options: ImportOptions,
        state: ImportJobState,
        on_progress: Callable[[ImportProgress], None] | None,
    ) -> ImportJobState:
        with self._unit() as uow:
            definition = self._registry.form(uow, app=job.app, key=job.form)
            sink = _Sink(self, uow, definition, job)
            try:
                table = self._open(job.id, options)
            except SubmissionError as err:
                return state.fail(err.errors, ImportProgress())
            try:
                mapping = map_columns(definition.compiled, table.headers, mapping=options.mapping)
                report = ErrorReport(self._report_path(job.id), table.headers)
                run = ImportRun(
                    mapping=mapping,
                    mode=options.mode,
                    sink=sink,
                    report=report,
                    options=field_options(definition.compiled, definition.option_sets or {}),
                    lang=options.lang,
                    unescape=options.file_format == "csv",
                    batch_size=self._batch_size,
                    on_progress=on_progress,
                )
                try:
                    progress = run_import(table, run)
                finally:
                    report.close()
            except SubmissionError as err:
                # The file or its columns cannot be read: `valid_rows` keeps committed batches.
                return state.fail(err.errors, sink.progress)
            finally:
                if table.close is not None:
                    table.close()
            if progress.rows_failed == 0:
                self._report_path(job.id).unlink(missing_ok=True)
                uow.commit()
        return state.finish(progress, mode=options.mode)

    def _open(self, job_id: int, options: ImportOptions) -> Table:
        handle = self._source_path(job_id, options.file_format).open("rb")
        try:
            table = open_table(
                handle,
                file_format=options.file_format,
                encoding=options.encoding,
                sheet=options.sheet,
                delimiter=options.delimiter,
            )
        except BaseException:
            handle.close()
            raise
        inner = table.close

        def close() -> None:
            try:
                if inner is not None:
                    inner()
            finally:
                handle.close()

        table.close = close
        return table

    def _save(self, job_id: int, state: ImportJobState, conn: sa.Connection | None = None) -> None:
        progress = state.progress
        counts = (progress.rows_read, progress.rows_written, progress.rows_failed)
        problems = [e.to_dict() for e in state.problems] if state.problems else None
        if conn is not None:
            ImportJobStore(conn, clock=self._clock).save(
                job_id=job_id, status=state.status, counts=counts
            )
            return
        with self._unit() as uow:
            ImportJobStore(uow.conn, clock=self._clock).save(
                job_id=job_id,
                status=state.status,
                counts=counts,
                problems=problems,
                final=state.is_final,
            )
            uow.commit()

    def _unit(self) -> UnitOfWork:
        return UnitOfWork(self._db, clock=self._clock)

    def _source_path(self, job_id: int, file_format: str) -> Path:
        return self._dir / str(job_id) / f"source.{file_format}"

    def _report_path(self, job_id: int) -> Path:
        return self._dir / str(job_id) / "errors.jsonl"

    # --- export --------------------------------------------------------------------------------

    def export_records(
        self,
        *,
        app: str,
        form: str,
        file_format: FileFormat,
        lang: str = "en",
        key_row: bool = False,
        actor: Who = None,
    ) -> ExportFile:
        """Every live record of the form the actor can read, oldest first, page by page.

        Columns of fields hidden from the actor are left out of the file.

        Raises:
            NotFoundError: the app has no such form (before any byte is produced).
            PermissionDenied: no `export` permission on the form.
        """
        with self._unit() as uow:
            definition = self._registry.form(uow, app=app, key=form)
            access = form_access(uow=uow, who=actor, app=app, form=form)
        require(access, "export")
        rows = export_rows(
            definition.compiled,
            self._records(definition, access=access, actor=actor),
            options=field_options(definition.compiled, definition.option_sets or {}),
            lang=lang,
            key_row=key_row,
            for_xlsx=file_format == "xlsx",
        )
        hidden = [
            i
            for i, f in enumerate(exportable_fields(definition.compiled))
            if access.is_hidden(f.key)
        ]
        if hidden:
            rows = _without_cells(rows, frozenset(hidden))
        return _tabular(rows, file_format, f"{form}-records", header_rows=2 if key_row else 1)

    def _records(
        self, definition: FormDefinition, *, access: FormAccess, actor: Who
    ) -> Iterator[dict[str, Any]]:
        layout = build_record_layout(
            app=definition.app, form=definition.compiled, forms=definition.forms
        )
        last = 0
        while True:
            with self._unit() as uow:
                main = layout.main
                scope = read_scope(uow.conn, access, main, who=actor, now=self._clock())
                query = (
                    sa.select(main.c.id)
                    .where(main.c.deleted_at.is_(None), main.c.id > last, *scope)
                    .order_by(main.c.id)
                    .limit(EXPORT_PAGE)
                )
                ids = [int(i) for i in uow.conn.execute(query).scalars()]
                store = FormRecordStore(uow.conn, layout=layout, clock=self._clock)
                records = store.get_many(ids=ids) if ids else []
                now = self._clock()
                records, shown = check_lookups(
                    uow.conn, access, layout, records, who=actor, now=now
                )
            for record in records:
                values = shown.strip(record.values)
                yield {k: field_json(definition, k, v) for k, v in values.items()}
            if len(ids) < EXPORT_PAGE:
                return
            last = ids[-1]


def _without_cells(rows: Iterator[list[Any]], dropped: frozenset[int]) -> Iterator[list[Any]]:
    """Every row without the cells at the `dropped` positions (the hidden fields' columns)."""
    for row in rows:
        yield [cell for index, cell in enumerate(row) if index not in dropped]


def _tabular(
    rows: Iterator[list[Any]], file_format: FileFormat, stem: str, *, header_rows: int = 1
) -> ExportFile:
    if file_format == "xlsx":
        chunks = _xlsx_chunks(rows, header_rows)
        return ExportFile(XLSX_MEDIA_TYPE, f"{stem}.xlsx", chunks)
    return ExportFile(CSV_MEDIA_TYPE, f"{stem}.csv", write_csv(rows))


def _xlsx_chunks(rows: Iterator[list[Any]], header_rows: int) -> Iterator[bytes]:
    # A generator, so that the workbook is only built once the response starts streaming.
    yield from iter_file(write_xlsx(rows, header_rows=header_rows))


class _Sink:
    """The import's `RecordSink` over one unit of work."""

    def __init__(
        self,
        service: TransferService,
        uow: UnitOfWork,
        definition: FormDefinition,
        job: ImportJobRecord,
    ) -> None:
        self._service = service
        self._uow = uow
        self._definition = definition
        self._job = job
        self.progress = ImportProgress()
        self._layout = build_record_layout(
            app=definition.app, form=definition.compiled, forms=definition.forms
        )
        self._store = FormRecordStore(uow.conn, layout=self._layout, clock=service._clock)
        kinds = {slot.key: slot for slot in self._layout.slots}
        self._writable = {
            key
            for key, slot in kinds.items()
            if slot.kind in _WRITABLE and str(slot.spec.type) != "autonumber"
        }
        self._targets = {slot.key: slot.target for slot in self._layout.slots if slot.target}

    # references
    def resolve_references(self, field: Any, texts: set[str]) -> Mapping[str, list[int]]:
        target = self._targets.get(field.key) or str(field.form)
        spec = self._definition.forms.get(target)
        title = getattr(spec, "title_field", None) if spec is not None else None
        if title is None or target not in self._layout.tables:
            return {}
        table = self._layout.tables[target].main
        found: dict[str, list[int]] = {}
        ordered = sorted(texts)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            query = sa.select(table.c.id, table.c[title]).where(
                table.c[title].in_(chunk), table.c.deleted_at.is_(None)
            )
            for record_id, text in self._uow.conn.execute(query):
                found.setdefault(str(text), []).append(int(record_id))
        return self._in_scope(target, table, found)

    def _in_scope(
        self, target: str, table: sa.Table, found: dict[str, list[int]]
    ) -> dict[str, list[int]]:
        """Only titles of records the importing user may read: an out-of-scope record with the
        same title must neither match nor make the title ambiguous."""
        from engine.forms.record_access import form_accesses, ids_in_scope
        from engine.identity.service import load_actor

        if not found or self._job.created_by is None:
            return found
        actor = load_actor(uow=self._uow, user_id=self._job.created_by)
        if actor.is_admin:
            return found
        app = self._definition.app
        access = form_accesses(uow=self._uow, who=actor, app=app, forms=[target])[target]
        every = [record_id for ids in found.values() for record_id in ids]
        now = self._service._clock()
        reached = ids_in_scope(self._uow.conn, access, table, every, who=actor, now=now)
        kept = {text: [i for i in ids if i in reached] for text, ids in found.items()}
        return {text: ids for text, ids in kept.items() if ids}

    # validation: the API's own rules, reading text leniently (labels, 是/否, "1,234.5")
    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        from engine.forms.attachments import resolve_file_refs
        from engine.forms.validation import EvalContext, validate_submission

        context = EvalContext(now=self._service._clock(), actor=self._job.created_by)
        # File references name stored uploads, as in the API (unknown ids fail the row).
        data = resolve_file_refs(conn=self._uow.conn, form=self._definition.compiled, data=data)
        clean = validate_submission(
            self._definition.compiled, data, current=None, context=context, lenient=True
        )
        return {k: v for k, v in clean.items() if k in self._writable}

    # writes: relations checked for the batch, then one savepoint and a statement per table;
    # on a conflict, row by row to find the culprits
    def write(self, records: Sequence[dict[str, Any]]) -> Mapping[int, FieldError]:
        conn = self._uow.conn
        failures = {
            position: err.errors[0] if err.errors else _row_error(err)
            for position, err in self._store.relation_errors(records).items()
        }
        good = [(p, record) for p, record in enumerate(records) if p not in failures]
        try:
            with conn.begin_nested():
                self._insert([record for _p, record in good])
            return failures
        except (ConflictError, SubmissionError, sa.exc.IntegrityError):
            pass
        for position, record in good:
            try:
                with conn.begin_nested():
                    self._insert([record])
            except SubmissionError as err:
                failures[position] = err.errors[0] if err.errors else _row_error(err)
            except (ConflictError, sa.exc.IntegrityError) as err:
                failures[position] = _row_error(err)
        return failures

    def _insert(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        actor, definition = self._job.created_by, self._definition
        ids = self._store.insert_many(records=records, actor=actor)
        entries = [
            (
                record_id,
                {
                    k: [None, v if type(v) in _JSON_AS_IS else field_json(definition, k, v)]
                    for k, v in record.items()
                    if v not in (None, [], "")
                },
            )
            for record_id, record in zip(ids, records, strict=True)
        ]
        conn, at = self._uow.conn, self._service._clock()
        app, form = definition.app, definition.key
        add_history_many(conn, app=app, form=form, entries=entries, actor=actor, at=at)
        self._announce(ids)

    def _announce(self, record_ids: list[int]) -> None:
        """One `created` change per imported record, read back in one query per batch."""
        listeners = self._service._listeners
        if not listeners:
            return
        definition, actor = self._definition, self._job.created_by
        for record in self._store.get_many(ids=record_ids):
            change = RecordChange(
                app=definition.app,
                form=definition.key,
                record_id=record.id,
                kind="created",
                before=None,
                after=record,
                changed=frozenset(record.values),
                actor_id=actor,
                source="import",
            )
            notify_listeners(listeners, self._uow, change)

    def checkpoint(self, progress: ImportProgress, *, keep: bool) -> None:
        self.progress = progress
        running = ImportJobState(status="running", progress=progress)
        if keep:
            self._service._save(self._job.id, running, conn=self._uow.conn)
            self._uow.commit()
        elif self._uow.conn.dialect.name != "sqlite":
            # One transaction holds the rows; progress goes through a second connection. SQLite
            # has a single writer, so there the job row only moves at the start and the end.
            self._service._save(self._job.id, running)


def _row_error(err: Exception) -> FieldError:
    code = getattr(err, "code", "storage.conflict")
    path = getattr(err, "path", None) or ""
    return FieldError(loc=path, code=code, message=str(err).splitlines()[0][:500])


__all__ = ["ExportFile", "FileFormat", "ImportOptions", "TransferService"]
