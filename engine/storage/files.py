"""Stored files: bytes under the data directory by content hash, one row per upload.

The same bytes uploaded twice are kept once on disk (`<root>/ab/cd/<sha256>`) and named by two
rows with random ids, so ids cannot be guessed from one another. Bytes are written before the
row; a rolled-back upload leaves an unnamed blob that a later clean-up may delete.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from engine.errors import EngineError, NotFoundError
from engine.storage.sqltypes import utc_now
from engine.storage.tables import stored_files

CHUNK = 1024 * 1024
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class FileTooLarge(EngineError):
    code = "file.too-large"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One stored upload; `ref()` is the value a file field holds."""

    id: str
    sha256: str
    size: int
    content_type: str
    name: str
    created_by: int | None
    created_at: datetime

    def ref(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "content_type": self.content_type,
            "sha256": self.sha256,
        }


def clean_name(name: str) -> str:
    """A display name without folders or control characters, at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE_NAME.sub("_", base).strip()[:255] or "file"


def clean_content_type(content_type: str | None) -> str:
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value if _CONTENT_TYPE.match(value) else "application/octet-stream"


class FileStore:
    """Uploads and lookups of stored files; the caller's transaction holds the rows."""

    def __init__(
        self, conn: sa.Connection, *, root: Path, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._conn = conn
        self._root = root
        self._clock = clock

    def put(
        self,
        *,
        stream: BinaryIO,
        name: str,
        content_type: str | None,
        actor: int | None,
        max_bytes: int,
    ) -> FileRecord:
        """Store the bytes of `stream` (read in chunks, never past `max_bytes`) and name them.

        Raises:
            FileTooLarge: the stream holds more than `max_bytes`; nothing is kept.
        """
        sha256, size = self._write_blob(stream, max_bytes)
        record = FileRecord(
            id=secrets.token_urlsafe(16),
            sha256=sha256,
            size=size,
            content_type=clean_content_type(content_type),
            name=clean_name(name),
            created_by=actor,
            created_at=self._clock(),
        )
        self._conn.execute(sa.insert(stored_files).values(_row(record)))
        return record

    def get(self, *, file_id: str) -> FileRecord:
        found = self.find_many(ids=[file_id])
        if file_id not in found:
            raise NotFoundError(f"no file {file_id!r}", code="file.not-found")
        return found[file_id]

    def find_many(self, *, ids: Iterable[str]) -> dict[str, FileRecord]:
        return find_files(self._conn, ids=ids)

    def path_of(self, record: FileRecord) -> Path:
        return self._blob_path(record.sha256)

    def _blob_path(self, sha256: str) -> Path:
        return blob_path(self._root, sha256)

    def _write_blob(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        self._root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=self._root, delete=False) as temporary:
            try:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLarge(f"the file exceeds {max_bytes} bytes")
                    digest.update(chunk)
                    temporary.write(chunk)
            except BaseException:
                temporary.close()
                os.unlink(temporary.name)
                raise
        target = self._blob_path(digest.hexdigest())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary.name, target)  # atomic; identical bytes may safely overwrite
        return digest.hexdigest(), size


def blob_path(root: Path, sha256: str) -> Path:
    """Where the bytes with this hash live under the files root."""
    return root / sha256[:2] / sha256[2:4] / sha256


def find_files(conn: sa.Connection, *, ids: Iterable[str]) -> dict[str, FileRecord]:
    """The stored files among `ids`, by id (unknown ids are simply absent)."""
    wanted = sorted({i for i in ids if isinstance(i, str)})
    if not wanted:
        return {}
    rows = conn.execute(sa.select(stored_files).where(stored_files.c.id.in_(wanted)))
    return {row.id: FileRecord(**row._mapping) for row in rows}


def _row(record: FileRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "sha256": record.sha256,
        "size": record.size,
        "content_type": record.content_type,
        "name": record.name,
        "created_by": record.created_by,
        "created_at": record.created_at,
    }


__all__ = [
    "FileRecord",
    "FileStore",
    "FileTooLarge",
    "blob_path",
    "clean_content_type",
    "clean_name",
    "find_files",
]
