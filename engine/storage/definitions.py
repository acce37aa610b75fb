"""Installed apps, versioned definitions and opaque bundle files (Core repositories)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.labels import Label
from engine.storage.conflicts import STALE, ConstraintConflict, translating_conflicts
from engine.storage.records import (
    AppRecord,
    BundleFileRecord,
    DefinitionRecord,
    DefinitionVersionRecord,
    PublishResult,
)
from engine.storage.sqltypes import utc_now
from engine.storage.tables import apps, bundle_files, definition_versions, definitions

Clock = Callable[[], datetime]

_DEFINITION_COLUMNS = (
    definitions.c.id,
    definitions.c.app,
    definitions.c.kind,
    definitions.c.key,
    definitions.c.current_version,
    definition_versions.c.digest.label("current_digest"),
    definitions.c.retired,
    definitions.c.updated_at,
)
_VERSION_COLUMNS = (
    definitions.c.app,
    definitions.c.kind,
    definitions.c.key,
    definition_versions.c.version,
    definition_versions.c.digest,
    definition_versions.c.body,
    definition_versions.c.created_at,
    definition_versions.c.created_by,
)
_versions_join = definitions.join(
    definition_versions, definition_versions.c.definition_id == definitions.c.id
)


class DefinitionStore:
    """Installed apps and their definitions; every publish of a changed body is a new version."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def install_app(
        self, *, key: str, name: Label, version: str, manifest: dict[str, Any]
    ) -> AppRecord:
        """Register the app `key`, or update its name, version and manifest if installed."""
        now = self._clock()
        values = {"name": name, "version": version, "manifest": manifest, "updated_at": now}
        with translating_conflicts():
            updated = self._conn.execute(sa.update(apps).where(apps.c.key == key).values(values))
            if updated.rowcount == 0:
                self._conn.execute(sa.insert(apps).values(key=key, installed_at=now, **values))
        return self.get_app(key=key)

    def get_app(self, *, key: str) -> AppRecord:
        row = self._conn.execute(sa.select(apps).where(apps.c.key == key)).one_or_none()
        if row is None:
            raise NotFoundError(f"app {key!r} is not installed", code="storage.app-not-found")
        return AppRecord(**row._mapping)

    def list_apps(self) -> list[AppRecord]:
        rows = self._conn.execute(sa.select(apps).order_by(apps.c.key))
        return [AppRecord(**row._mapping) for row in rows]

    def list_definitions(
        self, *, app: str | None = None, kind: str | None = None, include_retired: bool = False
    ) -> list[DefinitionRecord]:
        """Installed definitions with their current digest, ordered by app, kind and key."""
        query = _definitions_query().order_by(
            definitions.c.app, definitions.c.kind, definitions.c.key
        )
        if app is not None:
            query = query.where(definitions.c.app == app)
        if kind is not None:
            query = query.where(definitions.c.kind == kind)
        if not include_retired:
            query = query.where(definitions.c.retired.is_(False))
        return [DefinitionRecord(**row._mapping) for row in self._conn.execute(query)]

    def publish(
        self,
        *,
        app: str,
        kind: str,
        key: str,
        body: dict[str, Any],
        digest: str,
        actor: int | None,
    ) -> PublishResult:
        """Store `body` as version N+1 of the definition, unless its digest is the current one.

        Publishing a retired definition brings it back. Two concurrent publishes of the same
        definition cannot both win: the loser gets a `ConflictError`.
        """
        current = self._find(app=app, kind=kind, key=key)
        now = self._clock()
        with translating_conflicts():
            if current is None:
                definition_id, version = self._insert_definition(app, kind, key, now), 1
            elif current.current_digest == digest and not current.retired:
                return PublishResult(self.get_current(app=app, kind=kind, key=key), False)
            elif current.current_digest == digest:
                self._bump(current, current.current_version, now)
                return PublishResult(self.get_current(app=app, kind=kind, key=key), False)
            else:
                definition_id, version = current.id, current.current_version + 1
                self._bump(current, version, now)
            self._conn.execute(
                sa.insert(definition_versions).values(
                    definition_id=definition_id,
                    version=version,
                    digest=digest,
                    body=body,
                    created_at=now,
                    created_by=actor,
                )
            )
        return PublishResult(self.get_version(app=app, kind=kind, key=key, version=version), True)

    def retire(self, *, app: str, kind: str, key: str) -> None:
        """Hide a definition from listings; its versions stay (running instances use them)."""
        result = self._conn.execute(
            sa.update(definitions)
            .where(definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key)
            .values(retired=True, updated_at=self._clock())
        )
        if result.rowcount == 0:
            raise _definition_not_found(app, kind, key)

    def get_current(self, *, app: str, kind: str, key: str) -> DefinitionVersionRecord:
        """The current version of a definition (retired ones included)."""
        where = definition_versions.c.version == definitions.c.current_version
        return self._one_version(app, kind, key, where)

    def get_version(
        self, *, app: str, kind: str, key: str, version: int
    ) -> DefinitionVersionRecord:
        return self._one_version(app, kind, key, definition_versions.c.version == version)

    def list_versions(self, *, app: str, kind: str, key: str) -> list[DefinitionVersionRecord]:
        """Every version of a definition, oldest first."""
        query = self._versions_query(app, kind, key).order_by(definition_versions.c.version)
        return [DefinitionVersionRecord(**row._mapping) for row in self._conn.execute(query)]

    def _find(self, *, app: str, kind: str, key: str) -> DefinitionRecord | None:
        query = _definitions_query().where(
            definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key
        )
        row = self._conn.execute(query).one_or_none()
        return None if row is None else DefinitionRecord(**row._mapping)

    def _insert_definition(self, app: str, kind: str, key: str, now: datetime) -> int:
        values = {"app": app, "kind": kind, "key": key, "current_version": 1}
        result = self._conn.execute(
            sa.insert(definitions)
            .values(**values, retired=False, created_at=now, updated_at=now)
            .returning(definitions.c.id)
        )
        return int(result.scalar_one())

    def _bump(self, current: DefinitionRecord, version: int, now: datetime) -> None:
        result = self._conn.execute(
            sa.update(definitions)
            .where(
                definitions.c.id == current.id,
                definitions.c.current_version == current.current_version,
            )
            .values(current_version=version, retired=False, updated_at=now)
        )
        if result.rowcount != 1:
            raise ConstraintConflict(
                f"{current.kind} {current.app}.{current.key} was published concurrently",
                code=STALE,
            )

    def _versions_query(self, app: str, kind: str, key: str) -> sa.Select[Any]:
        return (
            sa.select(*_VERSION_COLUMNS)
            .select_from(_versions_join)
            .where(definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key)
        )

    def _one_version(
        self, app: str, kind: str, key: str, where: sa.ColumnElement[bool]
    ) -> DefinitionVersionRecord:
        row = self._conn.execute(self._versions_query(app, kind, key).where(where)).one_or_none()
        if row is None:
            raise _definition_not_found(app, kind, key)
        return DefinitionVersionRecord(**row._mapping)


class BundleFileStore:
    """Opaque files of a bundle (data/, pages/, demo.yaml), kept byte for byte."""

    def __init__(self, conn: sa.Connection, *, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def put(self, *, app: str, path: str, content: bytes) -> BundleFileRecord:
        """Store or replace the file `path` of `app`."""
        values = {
            "content": content,
            "size": len(content),
            "digest": hashlib.sha256(content).hexdigest(),
            "updated_at": self._clock(),
        }
        where = (bundle_files.c.app == app, bundle_files.c.path == path)
        with translating_conflicts():
            result = self._conn.execute(sa.update(bundle_files).where(*where).values(values))
            if result.rowcount == 0:
                self._conn.execute(sa.insert(bundle_files).values(app=app, path=path, **values))
        return self.get(app=app, path=path)

    def get(self, *, app: str, path: str) -> BundleFileRecord:
        query = sa.select(*_FILE_COLUMNS, bundle_files.c.content).where(
            bundle_files.c.app == app, bundle_files.c.path == path
        )
        row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError(
                f"bundle file {app}/{path} does not exist", code="storage.bundle-file-not-found"
            )
        return BundleFileRecord(**row._mapping)

    def list_files(self, *, app: str) -> list[BundleFileRecord]:
        """The files of `app` without their content, ordered by path."""
        query = (
            sa.select(*_FILE_COLUMNS).where(bundle_files.c.app == app).order_by(bundle_files.c.path)
        )
        return [BundleFileRecord(**row._mapping) for row in self._conn.execute(query)]

    def delete(self, *, app: str, path: str) -> bool:
        """Remove a file; False when there was none."""
        result = self._conn.execute(
            sa.delete(bundle_files).where(bundle_files.c.app == app, bundle_files.c.path == path)
        )
        return result.rowcount > 0


_FILE_COLUMNS = (
    bundle_files.c.app,
    bundle_files.c.path,
    bundle_files.c.size,
    bundle_files.c.digest,
    bundle_files.c.updated_at,
)


def _definitions_query() -> sa.Select[Any]:
    return (
        sa.select(*_DEFINITION_COLUMNS)
        .select_from(_versions_join)
        .where(definition_versions.c.version == definitions.c.current_version)
    )


def _definition_not_found(app: str, kind: str, key: str) -> NotFoundError:
    return NotFoundError(
        f"{kind} {app}.{key} is not installed", code="storage.definition-not-found"
    )


__all__ = ["BundleFileStore", "DefinitionStore"]
