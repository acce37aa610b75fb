"""Rows of the engine tables as frozen values, returned by the repositories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.labels import Label


@dataclass(frozen=True, slots=True)
class AppRecord:
    """An installed bundle."""

    key: str
    name: Label
    version: str
    manifest: dict[str, Any]
    installed_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DefinitionRecord:
    """An installed definition and the digest of its current version."""

    id: int
    app: str
    kind: str
    key: str
    current_version: int
    current_digest: str
    retired: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DefinitionVersionRecord:
    """One published version of a definition, with its body."""

    app: str
    kind: str
    key: str
    version: int
    digest: str
    body: dict[str, Any]
    created_at: datetime
    created_by: int | None


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What `DefinitionStore.publish` did: `created` is False when the digest was unchanged."""

    version: DefinitionVersionRecord
    created: bool


@dataclass(frozen=True, slots=True)
class BundleFileRecord:
    """An opaque file of a bundle; `content` is None in listings."""

    app: str
    path: str
    size: int
    digest: str
    updated_at: datetime
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    actor_id: int | None
    action: str
    target_kind: str
    target_key: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    email: str | None
    status: str
    password_hash: str | None
    created_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class DepartmentRecord:
    id: int
    key: str
    name: Label
    parent_id: int | None
    head_user_id: int | None
    version: int


@dataclass(frozen=True, slots=True)
class RoleRecord:
    id: int
    app: str | None
    key: str
    label: Label
    version: int


__all__ = [
    "AppRecord",
    "AuditEntry",
    "BundleFileRecord",
    "DefinitionRecord",
    "DefinitionVersionRecord",
    "DepartmentRecord",
    "PublishResult",
    "RoleRecord",
    "UserRecord",
]
