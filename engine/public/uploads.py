"""Files attached by anonymous submitters: photos of a fault, a receipt.

An upload goes through the open link it is for: the link must list upload fields, the client
address has its own upload budget, the type is read from the bytes (the name and the declared
type are the client's word, so they are ignored), the size is capped while streaming, and the
name loses any folder part. The bytes are stored like every upload (`engine.storage.files`).

The submitter gets the stored file's random id back and puts it in the submission. Only ids
uploaded through the same link and not yet used are accepted, each once: the pending upload is
a `public_tracking` row (the sha256 of "upload:<id>", record 0) that the submission points at
its new record, so nobody can attach a file uploaded by someone else, or an internal file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, BinaryIO

import sqlalchemy as sa

from engine.errors import FieldError, NotFoundError, SubmissionError
from engine.public import rate
from engine.public._store import PublicLink
from engine.public.spec import PublicLinkSpec
from engine.storage.files import FileRecord, FileStore
from engine.storage.tables_public import public_tracking
from engine.storage.uow import UnitOfWork

NO_UPLOADS = "public.no-uploads"
FILE_TYPE = "public.file-type"
UPLOAD_UNKNOWN = "public.upload-unknown"
TOO_MANY_FILES = "public.too-many-files"
PENDING = 0  # record_id of an upload no submission has used yet

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
)
_EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file show, among the types uploads accept."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, offset, media_type in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    return None


def upload_hash(file_id: str) -> str:
    return hashlib.sha256(f"upload:{file_id}".encode()).hexdigest()


def store_upload(
    uow: UnitOfWork,
    *,
    link: PublicLink,
    spec: PublicLinkSpec,
    stream: BinaryIO,
    name: str,
    client: str,
    root: Any,
    max_bytes: int,
) -> FileRecord:
    """Check and store one upload for `link` (in `uow`; the caller commits).

    Raises:
        NotFoundError: `public.no-uploads` when the link takes no files.
        RateLimited: the client address used up its uploads for this window (committed).
        SubmissionError: `public.file-type` when the bytes are not of an accepted type.
        FileTooLarge: over the link's (or the server's) size limit; nothing is kept.
    """
    uploads = spec.uploads
    if uploads is None:
        raise NotFoundError("this link takes no files", code=NO_UPLOADS)
    try:
        rate.hit(
            uow.conn,
            bucket=f"upload:{link.id}:{client}",
            limit=uploads.per_client,
            window_seconds=spec.limits.window_seconds,
            now=uow.clock(),
        )
    finally:
        uow.commit()  # refused hits count too
    head = stream.read(16)
    media_type = sniff(head)
    if media_type is None or media_type not in uploads.types:
        accepted = ", ".join(uploads.types)
        message = f"this file is not of an accepted type ({accepted})"
        raise SubmissionError([FieldError("file", FILE_TYPE, message)])
    stream.seek(0)
    record = FileStore(uow.conn, root=root, clock=uow.clock).put(
        stream=stream,
        name=_named(name, media_type),
        content_type=media_type,
        actor=None,
        max_bytes=min(uploads.max_bytes, max_bytes),
    )
    uow.conn.execute(
        sa.insert(public_tracking).values(
            token_hash=upload_hash(record.id),
            link_id=link.id,
            record_id=PENDING,
            created_at=uow.clock(),
        )
    )
    return record


def claim_uploads(
    uow: UnitOfWork, *, link: PublicLink, spec: PublicLinkSpec, data: Mapping[str, Any]
) -> dict[str, list[str]]:
    """The file ids `data` names per upload field, each checked to be a pending upload of
    `link`; `SubmissionError` (every problem, with its field) otherwise."""
    fields = spec.uploads.fields if spec.uploads else []
    limit = spec.uploads.max_files if spec.uploads else 0
    claimed: dict[str, list[str]] = {}
    errors: list[FieldError] = []
    for key in fields:
        if data.get(key) in (None, [], ""):
            continue
        refs = data[key] if isinstance(data[key], list) else [data[key]]
        ids = [r.get("id") if isinstance(r, Mapping) else r for r in refs]
        if len(ids) > limit:
            errors.append(FieldError(key, TOO_MANY_FILES, f"at most {limit} files"))
            continue
        pending = _pending(uow.conn, link.id, [i for i in ids if isinstance(i, str)])
        for index, file_id in enumerate(ids):
            if not isinstance(file_id, str) or upload_hash(file_id) not in pending:
                message = "upload the file through this link first (each upload is used once)"
                errors.append(FieldError(f"{key}/{index}", UPLOAD_UNKNOWN, message))
        claimed[key] = [str(i) for i in ids]
    if errors:
        raise SubmissionError(errors)
    return claimed


def attach_uploads(uow: UnitOfWork, *, claimed: Mapping[str, list[str]], record_id: int) -> None:
    """Mark the claimed uploads as used by `record_id` (so they cannot be used again)."""
    hashes = [upload_hash(i) for ids in claimed.values() for i in ids]
    if hashes:
        uow.conn.execute(
            sa.update(public_tracking)
            .where(public_tracking.c.token_hash.in_(hashes))
            .values(record_id=record_id)
        )


def _pending(conn: sa.Connection, link_id: int, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = conn.execute(
        sa.select(public_tracking.c.token_hash).where(
            public_tracking.c.token_hash.in_([upload_hash(i) for i in ids]),
            public_tracking.c.link_id == link_id,
            public_tracking.c.record_id == PENDING,
        )
    )
    return {str(h) for h in rows.scalars()}


def _named(name: str, media_type: str) -> str:
    """The client's file name without folders, ending in an extension of its real type."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "file"
    extensions = _EXTENSIONS[media_type]
    return base if base.lower().endswith(extensions) else base + extensions[0]


__all__ = [
    "FILE_TYPE",
    "NO_UPLOADS",
    "TOO_MANY_FILES",
    "UPLOAD_UNKNOWN",
    "attach_uploads",
    "claim_uploads",
    "sniff",
    "store_upload",
    "upload_hash",
]
