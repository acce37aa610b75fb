"""Attachment downloads through their record: the bytes of a file only to who can read the
record and the field, and only when the file is in that field's value (no IDOR).

Every refusal below sign-in is the same 404, so a caller learns nothing about records, fields
or files it cannot read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import DatabaseDep, SettingsDep
from api.routes.records import ServiceDep
from api.schemas import problem_responses
from api.security import RequiredActorDep
from engine.errors import NotFoundError, PermissionDenied
from engine.forms.attachments import FILE_FIELDS
from engine.storage import UnitOfWork
from engine.storage.files import FileStore

router = APIRouter(tags=["records"])
FILE_NOT_FOUND = "record.file-not-found"
PATH = "/apps/{app}/forms/{form}/records/{record_id}/files/{field}/{file_id}"


def file_ids(value: Any) -> set[str]:
    """The ids of the stored files a file field's value names (one reference or a list)."""
    items = value if isinstance(value, list) else [value]
    return {str(item["id"]) for item in items if isinstance(item, dict) and "id" in item}


@router.get(PATH, response_class=FileResponse, responses=problem_responses(401, 404))
def download_record_file(
    app: str,
    form: str,
    record_id: int,
    field: str,
    file_id: str,
    service: ServiceDep,
    actor: RequiredActorDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> FileResponse:
    """The bytes of `file_id`, as an attachment, if it is in `field` of a record you can read."""
    missing = NotFoundError("no such file on this record", code=FILE_NOT_FOUND)
    try:
        result = service.get(app=app, form=form, record_id=record_id, actor=actor)
    except (NotFoundError, PermissionDenied) as err:
        raise missing from err
    spec = result.definition.compiled.fields.get(field)
    hidden = result.access is not None and result.access.is_hidden(field)
    if not isinstance(spec, FILE_FIELDS) or hidden:
        raise missing
    if file_id not in file_ids(result.record.values.get(field)):
        raise missing
    with UnitOfWork(db) as uow:
        store = FileStore(uow.conn, root=settings.data_dir / "files")
        try:
            record = store.get(file_id=file_id)
        except NotFoundError as err:
            raise missing from err
        path = store.path_of(record)
    return FileResponse(
        path,
        media_type=record.content_type,
        filename=record.name,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )


__all__ = ["FILE_NOT_FOUND", "file_ids", "router"]
