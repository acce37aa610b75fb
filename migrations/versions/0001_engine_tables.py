"""Engine tables: apps, definitions and their versions, bundle files, identity, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported, so this revision never changes under our feet.
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
KEY = sa.String(64)


def _fk(target: str, ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete=ondelete)


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.Integer, nullable=False, server_default="1")


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("key", KEY, nullable=False),
        sa.Column("name", JSON, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("manifest", JSON, nullable=False),
        sa.Column("installed_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_apps"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_users_status")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(64), nullable=False),
        sa.Column("target_key", sa.String(255), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_kind", "target_key"])
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("app", KEY, _fk("apps.key", "CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_definitions"),
        sa.UniqueConstraint("app", "kind", "key", name="uq_definitions_app_kind_key"),
    )
    op.create_table(
        "definition_versions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("definition_id", sa.Integer, _fk("definitions.id", "CASCADE"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.Integer, _fk("users.id", "SET NULL"), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_definition_versions"),
        sa.UniqueConstraint(
            "definition_id", "version", name="uq_definition_versions_definition_id_version"
        ),
    )
    op.create_table(
        "bundle_files",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("app", KEY, _fk("apps.key", "CASCADE"), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bundle_files"),
        sa.UniqueConstraint("app", "path", name="uq_bundle_files_app_path"),
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("name", JSON, nullable=False),
        sa.Column("parent_id", sa.Integer, _fk("departments.id", "RESTRICT"), nullable=True),
        sa.Column("head_user_id", sa.Integer, _fk("users.id", "SET NULL"), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_departments"),
        sa.UniqueConstraint("key", name="uq_departments_key"),
    )
    op.create_index("ix_departments_parent_id", "departments", ["parent_id"])
    op.create_table(
        "user_departments",
        sa.Column("user_id", sa.Integer, _fk("users.id", "CASCADE"), nullable=False),
        sa.Column("department_id", sa.Integer, _fk("departments.id", "CASCADE"), nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("user_id", "department_id", name="pk_user_departments"),
    )
    op.create_index("ix_user_departments_department_id", "user_departments", ["department_id"])
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("app", KEY, _fk("apps.key", "CASCADE"), nullable=True),
        sa.Column("key", KEY, nullable=False),
        sa.Column("label", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_roles"),
    )
    for name, columns, where in (
        ("uq_roles_app_key", ["app", "key"], "app IS NOT NULL"),
        ("uq_roles_key", ["key"], "app IS NULL"),
    ):
        op.create_index(
            name,
            "roles",
            columns,
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer, _fk("users.id", "CASCADE"), nullable=False),
        sa.Column("role_id", sa.Integer, _fk("roles.id", "CASCADE"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role_id", name="pk_user_roles"),
    )
    op.create_index("ix_user_roles_role_id", "user_roles", ["role_id"])


def downgrade() -> None:
    for table in (
        "user_roles",
        "roles",
        "user_departments",
        "departments",
        "bundle_files",
        "definition_versions",
        "definitions",
        "audit_log",
        "users",
        "apps",
    ):
        op.drop_table(table)
