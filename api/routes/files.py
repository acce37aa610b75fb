"""Uploads for attachment, image and signature fields, and their downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.deps import DatabaseDep, SettingsDep
from api.schemas import problem_responses
from engine.storage import UnitOfWork
from engine.storage.files import FileStore

router = APIRouter(tags=["files"])


class FileOut(BaseModel):
    """A stored file: put it (or just its `id`) in a file field's value."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str


@router.post("/files", status_code=201, response_model=FileOut,
             responses=problem_responses(413))  # fmt: skip
def upload_file(
    upload: Annotated[UploadFile, File(alias="file")], db: DatabaseDep, settings: SettingsDep
) -> FileOut:
    """Store an upload by content hash; the answer is the reference a file field holds."""
    with UnitOfWork(db) as uow:
        store = FileStore(uow.conn, root=settings.data_dir / "files", clock=uow.clock)
        record = store.put(
            stream=upload.file,
            name=upload.filename or "file",
            content_type=upload.content_type,
            actor=None,
            max_bytes=settings.max_upload_bytes,
        )
        uow.commit()
    return FileOut.model_validate(record.ref())


@router.get("/files/{file_id}", response_class=FileResponse, responses=problem_responses(404))
def download_file(file_id: str, db: DatabaseDep, settings: SettingsDep) -> FileResponse:
    """The bytes of a stored file, as an attachment (never rendered inline)."""
    with UnitOfWork(db) as uow:
        store = FileStore(uow.conn, root=settings.data_dir / "files")
        record = store.get(file_id=file_id)
        path = store.path_of(record)
    return FileResponse(
        path,
        media_type=record.content_type,
        filename=record.name,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )
