"""Record import and export over HTTP: upload a CSV/XLSX as an import job, poll it, download the
error report, and stream every record out as CSV or XLSX.

The import runs after the upload's response (a background task); `GET …/imports/{job}` shows its
progress. Include this router before the records router: `/records/export` is not a record id.
"""

from __future__ import annotations

import json
import tempfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.errors import PayloadTooLarge
from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import FieldError, SubmissionError
from engine.forms.record_audit import audit_export
from engine.forms.transfer import IMPORT_MODES
from engine.forms.transfer_service import ExportFile, ImportOptions, TransferService
from engine.registry import DefinitionRegistry
from engine.storage.import_jobs import ImportJobRecord

router = APIRouter(tags=["import and export"])

FORM = "/apps/{app}/forms/{form}"
BAD_OPTION = "transfer.bad-option"
CHUNK = 1024 * 1024
DELIMITERS = (",", ";", "|", "\t")


def get_transfer_service(request: Request) -> TransferService:
    """The app's transfer service, built on first use (sharing the app's registry)."""
    state = request.app.state
    service = getattr(state, "transfer", None)
    if service is None:
        registry = getattr(state, "registry", None) or DefinitionRegistry()
        state.registry = registry
        service = TransferService(
            db=state.db,
            registry=registry,
            data_dir=state.settings.data_dir,
            listeners=state.record_listeners,
        )
        state.transfer = service
    return service


TransferDep = Annotated[TransferService, Depends(get_transfer_service)]
FileFormatParam = Literal["csv", "xlsx"]


class ImportJobOut(BaseModel):
    id: int
    status: str
    mode: str
    file_name: str
    rows_read: int
    rows_written: int
    rows_failed: int
    problems: list[dict[str, str]] | None
    created_at: str
    finished_at: str | None
    links: dict[str, str]


def _job_out(request: Request, job: ImportJobRecord) -> ImportJobOut:
    base = f"/api/v1/apps/{job.app}/forms/{job.form}/imports/{job.id}"
    links = {"self": base}
    if job.rows_failed:
        links["errors"] = base + "/errors"
    return ImportJobOut(
        id=job.id,
        status=job.status,
        mode=job.mode,
        file_name=job.file_name,
        rows_read=job.rows_read,
        rows_written=job.rows_written,
        rows_failed=job.rows_failed,
        problems=job.problems,
        created_at=job.created_at.isoformat(),
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        links=links,
    )


def _bad(loc: str, message: str) -> SubmissionError:
    return SubmissionError([FieldError(loc=loc, code=BAD_OPTION, message=message)], message)


def _options(
    file_name: str,
    file_format: str | None,
    mode: str,
    mapping: str | None,
    encoding: str,
    sheet: str | None,
    lang: str,
    delimiter: str,
) -> ImportOptions:
    chosen = file_format or ("xlsx" if file_name.lower().endswith(".xlsx") else "csv")
    if chosen not in ("csv", "xlsx"):
        raise _bad("format", "format is csv or xlsx")
    if mode not in IMPORT_MODES:
        raise _bad("mode", f"mode is one of {', '.join(IMPORT_MODES)}")
    if encoding not in ("utf-8", "gb18030", "auto"):
        raise _bad("encoding", "encoding is utf-8, gb18030 or auto")
    if delimiter not in DELIMITERS:
        raise _bad("delimiter", "delimiter is one of , ; | or a tab")
    parsed: Any = None
    if mapping:
        try:
            parsed = json.loads(mapping)
        except json.JSONDecodeError as err:
            raise _bad("mapping", "mapping is a JSON object {header: field key}") from err
        if not isinstance(parsed, dict):
            raise _bad("mapping", "mapping is a JSON object {header: field key}")
    return ImportOptions(
        file_format=chosen,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        mapping=parsed,
        encoding=encoding,  # type: ignore[arg-type]
        sheet=sheet or None,
        lang=lang,
        delimiter=delimiter,
    )


def _spool(upload: UploadFile, limit: int) -> Any:
    """The upload copied to a temp file, refused above `limit` bytes."""
    spooled = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)
    size = 0
    while chunk := upload.file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            spooled.close()
            raise PayloadTooLarge(f"the upload exceeds {limit} bytes")
        spooled.write(chunk)
    spooled.seek(0)
    return spooled


@router.post(
    FORM + "/imports",
    status_code=202,
    response_model=ImportJobOut,
    responses=problem_responses(404, 413, 422),
)
def start_import(
    app: str,
    form: str,
    request: Request,
    service: TransferDep,
    actor: RequiredActorDep,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GB18030) or XLSX")],
    mode: Annotated[str, Form(description="all_or_nothing or valid_rows")] = "all_or_nothing",
    mapping: Annotated[str | None, Form(description='JSON {"header": "field key"}')] = None,
    encoding: Annotated[str, Form(description="utf-8, gb18030 or auto")] = "utf-8",
    sheet: Annotated[str | None, Form(description="XLSX sheet name")] = None,
    file_format: Annotated[str | None, Form(alias="format")] = None,
    lang: Annotated[str, Form(description="Language of option labels")] = "en",
    delimiter: Annotated[str, Form(description="CSV delimiter: , ; | or a tab")] = ",",
) -> ImportJobOut:
    """Upload a file to import into the form; the job runs next and can be polled."""
    file_name = file.filename or "upload"
    options = _options(file_name, file_format, mode, mapping, encoding, sheet, lang, delimiter)
    limit = request.app.state.settings.max_upload_bytes
    with _spool(file, limit) as spooled:
        job_id = service.create_import(
            app=app, form=form, upload=spooled, file_name=file_name, options=options, actor=actor
        )
    background.add_task(service.run_import, job_id=job_id)
    return _job_out(request, service.job(app=app, form=form, job_id=job_id))


@router.get(
    FORM + "/imports/{job_id}", response_model=ImportJobOut, responses=problem_responses(404)
)
def read_import(
    app: str,
    form: str,
    job_id: int,
    request: Request,
    service: TransferDep,
    actor: RequiredActorDep,
) -> ImportJobOut:
    """An import job: status (pending, running, done, failed), row counts, problems, links."""
    return _job_out(request, service.job(app=app, form=form, job_id=job_id, actor=actor))


def _stream(export: ExportFile) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{export.file_name}"'}
    return StreamingResponse(export.chunks, media_type=export.media_type, headers=headers)


@router.get(
    FORM + "/imports/{job_id}/errors",
    response_class=StreamingResponse,
    responses=problem_responses(404),
)
def read_import_errors(
    app: str,
    form: str,
    job_id: int,
    service: TransferDep,
    actor: RequiredActorDep,
    file_format: Annotated[FileFormatParam, Query(alias="format")] = "csv",
) -> StreamingResponse:
    """The rows that failed, with their original cells and `#row`, `#error_codes`, `#errors`."""
    return _stream(
        service.error_report(
            app=app, form=form, job_id=job_id, file_format=file_format, actor=actor
        )
    )


@router.get(
    FORM + "/records/export", response_class=StreamingResponse, responses=problem_responses(404)
)
def export_records(
    request: Request,
    app: str,
    form: str,
    service: TransferDep,
    actor: RequiredActorDep,
    file_format: Annotated[FileFormatParam, Query(alias="format")] = "csv",
    lang: Annotated[str, Query(max_length=8)] = "en",
    keys: Annotated[bool, Query(description="Add a second header row of field keys")] = False,
) -> StreamingResponse:
    """Every live record as CSV or XLSX, streamed; re-importable as is."""
    export = service.export_records(
        app=app, form=form, file_format=file_format, lang=lang, key_row=keys, actor=actor
    )
    detail = {"format": file_format, "keys": keys}
    audit_export(request.app.state.db, app=app, form=form, actor_id=actor.user_id, detail=detail)
    return _stream(export)
