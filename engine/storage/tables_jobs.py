"""Durable jobs, outbox deliveries and in-app notifications.

Engine tables on the shared metadata of engine/storage/tables.py."""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime
from engine.storage.tables import _created_at, metadata

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
# A key names one pending piece of work ("timer:instance:42"): while a job with that key is
# queued or running, enqueueing the key again is a no-op (enforced by this partial index).
ACTIVE_JOB_STATUSES = ("queued", "running")
_ACTIVE_KEY = sa.text("status IN ('queued', 'running') AND key IS NOT NULL")
_QUEUED = sa.text("status = 'queued'")
_RUNNING = sa.text("status = 'running'")
_FAILED = sa.text("status = 'failed'")

job_queue = sa.Table(
    "job_queue",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("payload", JSONDocument, nullable=False),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", UtcDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("locked_by", sa.String(100), nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.CheckConstraint(sa.column("status").in_(JOB_STATUSES), name="status"),
    sa.CheckConstraint(sa.column("max_attempts") >= 1, name="max_attempts"),
    # Claiming scans queued jobs by due time, the reaper running jobs by lease. Partial indexes
    # stay small, and a job moving on to running and done adds no entries to them.
    sa.Index(
        "ix_job_queue_due_at_id",
        "due_at",
        "id",
        sqlite_where=_QUEUED,
        postgresql_where=_QUEUED,
    ),
    sa.Index(
        "ix_job_queue_lease_until",
        "lease_until",
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    ),
    sa.Index("ix_job_queue_failed_id", "id", sqlite_where=_FAILED, postgresql_where=_FAILED),
    sa.Index(
        "uq_job_queue_active_key",
        "key",
        unique=True,
        sqlite_where=_ACTIVE_KEY,
        postgresql_where=_ACTIVE_KEY,
    ),
)

outbox_notifications = sa.Table(
    "outbox_notifications",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("link", sa.String(2000), nullable=True),
    sa.Column("key", sa.String(200), nullable=True),
    _created_at(),
    sa.Column("read_at", UtcDateTime(), nullable=True),
    sa.Index("ix_outbox_notifications_user_id_read_at", "user_id", "read_at"),
    sa.UniqueConstraint("user_id", "key"),
)

# One row per delivery attempt of an outbound webhook, success or not: the per-endpoint log.
outbox_deliveries = sa.Table(
    "outbox_deliveries",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("job_id", RowId, nullable=True),
    sa.Column("delivery_id", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(2000), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_outbox_deliveries_endpoint_at", "endpoint", "at"),
)

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "JOB_STATUSES",
    "job_queue",
    "outbox_deliveries",
    "outbox_notifications",
]
