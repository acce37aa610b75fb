"""Durable jobs, outbox deliveries and in-app notifications.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ACTIVE_KEY = sa.text("status IN ('queued', 'running') AND key IS NOT NULL")
_QUEUED = sa.text("status = 'queued'")
_RUNNING = sa.text("status = 'running'")
_FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    op.create_table(
        "job_queue",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')",
            name=op.f("ck_job_queue_status"),
        ),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_job_queue_max_attempts")),
        sa.PrimaryKeyConstraint("id", name="pk_job_queue"),
    )
    op.create_index(
        "ix_job_queue_due_at_id",
        "job_queue",
        ["due_at", "id"],
        sqlite_where=_QUEUED,
        postgresql_where=_QUEUED,
    )
    op.create_index(
        "ix_job_queue_lease_until",
        "job_queue",
        ["lease_until"],
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )
    op.create_index(
        "ix_job_queue_failed_id",
        "job_queue",
        ["id"],
        sqlite_where=_FAILED,
        postgresql_where=_FAILED,
    )
    op.create_index(
        "uq_job_queue_active_key",
        "job_queue",
        ["key"],
        unique=True,
        sqlite_where=_ACTIVE_KEY,
        postgresql_where=_ACTIVE_KEY,
    )
    op.create_table(
        "outbox_notifications",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(2000), nullable=True),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_outbox_notifications_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_notifications"),
        sa.UniqueConstraint("user_id", "key", name="uq_outbox_notifications_user_id_key"),
    )
    op.create_index(
        "ix_outbox_notifications_user_id_read_at", "outbox_notifications", ["user_id", "read_at"]
    )
    op.create_table(
        "outbox_deliveries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("job_id", _ID, nullable=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(2000), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_deliveries"),
    )
    op.create_index("ix_outbox_deliveries_endpoint_at", "outbox_deliveries", ["endpoint", "at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_deliveries_endpoint_at", table_name="outbox_deliveries")
    op.drop_table("outbox_deliveries")
    op.drop_index("ix_outbox_notifications_user_id_read_at", table_name="outbox_notifications")
    op.drop_table("outbox_notifications")
    op.drop_index("uq_job_queue_active_key", table_name="job_queue")
    op.drop_index("ix_job_queue_failed_id", table_name="job_queue")
    op.drop_index("ix_job_queue_lease_until", table_name="job_queue")
    op.drop_index("ix_job_queue_due_at_id", table_name="job_queue")
    op.drop_table("job_queue")
