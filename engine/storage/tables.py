"""The engine's own tables (apps, definitions, identity, audit): one `MetaData` for Alembic.

Form tables are not here: the schema synchroniser (`form_tables.py`) owns them.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

KEY = sa.String(64)
USER_STATUSES = ("active", "disabled")


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", UtcDateTime(), nullable=False)


def _lock_version() -> sa.Column[int]:
    # Optimistic lock: writers bump it and update only where it still has the value they read.
    return sa.Column("version", sa.Integer, nullable=False, server_default="1")


apps = sa.Table(
    "apps",
    metadata,
    sa.Column("key", KEY, primary_key=True),
    sa.Column("name", JSONDocument, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("manifest", JSONDocument, nullable=False),
    sa.Column("installed_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("password_hash", sa.String(255), nullable=True),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    _lock_version(),
    sa.CheckConstraint(sa.column("status").in_(USER_STATUSES), name="status"),
)

definitions = sa.Table(
    "definitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("app", KEY, sa.ForeignKey("apps.key", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", KEY, nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("app", "kind", "key"),
)

definition_versions = sa.Table(
    "definition_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "definition_id",
        sa.Integer,
        sa.ForeignKey("definitions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("body", JSONDocument, nullable=False),
    _created_at(),
    sa.Column(
        "created_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    sa.UniqueConstraint("definition_id", "version"),
)

bundle_files = sa.Table(
    "bundle_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("app", KEY, sa.ForeignKey("apps.key", ondelete="CASCADE"), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("app", "path"),
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", KEY, nullable=False, unique=True),
    sa.Column("name", JSONDocument, nullable=False),
    sa.Column(
        "parent_id",
        sa.Integer,
        sa.ForeignKey("departments.id", ondelete="RESTRICT"),
        nullable=True,
        index=True,
    ),
    sa.Column(
        "head_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    _created_at(),
    _lock_version(),
)

user_departments = sa.Table(
    "user_departments",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "department_id",
        sa.Integer,
        sa.ForeignKey("departments.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("app", KEY, sa.ForeignKey("apps.key", ondelete="CASCADE"), nullable=True),
    sa.Column("key", KEY, nullable=False),
    sa.Column("label", JSONDocument, nullable=False),
    _created_at(),
    _lock_version(),
    # NULLs never collide in a unique constraint, so global roles (app IS NULL) get their own.
    sa.Index(
        "uq_roles_app_key",
        "app",
        "key",
        unique=True,
        sqlite_where=sa.text("app IS NOT NULL"),
        postgresql_where=sa.text("app IS NOT NULL"),
    ),
    sa.Index(
        "uq_roles_key",
        "key",
        unique=True,
        sqlite_where=sa.text("app IS NULL"),
        postgresql_where=sa.text("app IS NULL"),
    ),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "role_id",
        sa.Integer,
        sa.ForeignKey("roles.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

# No foreign key on actor_id: the log outlives the rows it talks about and is append-only.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("actor_id", sa.Integer, nullable=True, index=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_kind", sa.String(64), nullable=False),
    sa.Column("target_key", sa.String(255), nullable=False),
    sa.Column("detail", JSONDocument, nullable=False),
    sa.Index("ix_audit_log_target", "target_kind", "target_key"),
)

# --- records (helper "records", migration 0002) ----------------------------------------------
# Record meta tables carry (app, form, record_id) instead of foreign keys: form tables belong to
# the synchroniser, and history outlives the records it describes.

RECORD_ACTIONS = ("create", "update", "delete", "restore")

record_history = sa.Table(
    "record_history",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("record_id", RowId, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("changes", JSONDocument, nullable=False),
    sa.Index("ix_record_history_record", "app", "form", "record_id"),
)

record_comments = sa.Table(
    "record_comments",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("record_id", RowId, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("deleted_at", UtcDateTime(), nullable=True),
    sa.Index("ix_record_comments_record", "app", "form", "record_id"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("record_id", RowId, nullable=False),
    sa.Column("request_digest", sa.String(64), nullable=False),
    _created_at(),
    sa.UniqueConstraint("app", "form", "key"),
)

autonumber_counters = sa.Table(
    "autonumber_counters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("field", KEY, nullable=False),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("app", "form", "field", "period"),
)

# --- imports (helper "transfer", migration 0003) ----------------------------------------------
# One row per record import: the client polls it; the error report lives under the data folder.

IMPORT_STATUSES = ("pending", "running", "done", "failed")

import_jobs = sa.Table(
    "import_jobs",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("form", KEY, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("options", JSONDocument, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_written", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("problems", JSONDocument, nullable=True),
    sa.Column("created_by", sa.Integer, nullable=True),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.CheckConstraint(sa.column("status").in_(IMPORT_STATUSES), name="status"),
    sa.Index("ix_import_jobs_form", "app", "form"),
)

# --- sign-in (helper "auth", migration 0004) ---------------------------------------------------
# Secrets are never stored: sessions, CSRF and API tokens keep only the sha256 of a random value.

auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("csrf_hash", sa.String(64), nullable=False),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    _created_at(),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    sa.Column("client", sa.String(64), nullable=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _created_at(),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)

# Failed sign-ins only (a success deletes the username's rows): the throttle counts them.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("username", sa.String(150), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Index("ix_login_failures_username_at", "username", "at"),
    sa.Index("ix_login_failures_client_at", "client", "at"),
)

department_roles = sa.Table(
    "department_roles",
    metadata,
    sa.Column(
        "department_id",
        sa.Integer,
        sa.ForeignKey("departments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "role_id",
        sa.Integer,
        sa.ForeignKey("roles.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

# --- stored files (migration 0005) -----------------------------------------------------------
# The bytes live under the data directory by content hash; a row names one upload of them.
# Ids are random so that they cannot be enumerated.

stored_files = sa.Table(
    "stored_files",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(127), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    _created_at(),
    sa.Index("ix_stored_files_sha256", "sha256"),
)

__all__ = [
    "IMPORT_STATUSES",
    "NAMING_CONVENTION",
    "RECORD_ACTIONS",
    "USER_STATUSES",
    "api_tokens",
    "apps",
    "audit_log",
    "auth_sessions",
    "autonumber_counters",
    "bundle_files",
    "definition_versions",
    "definitions",
    "department_roles",
    "departments",
    "idempotency_keys",
    "import_jobs",
    "login_failures",
    "metadata",
    "record_comments",
    "record_history",
    "roles",
    "stored_files",
    "user_departments",
    "user_roles",
    "users",
]

# Later engines keep their tables in modules of their own on this metadata; importing them here
# makes `metadata` complete for Alembic and the tests whichever module is imported first.
from engine.storage import (  # noqa: E402
    tables_assign,
    tables_flows,
    tables_jobs,
    tables_public,
    tables_reports,
    tables_sla,
)

del tables_assign, tables_flows, tables_jobs, tables_public, tables_reports, tables_sla
