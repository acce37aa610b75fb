"""Flow instances, tokens and history (the timeline); inbound webhook secrets.

Engine tables on the shared metadata of engine/storage/tables.py. User tasks live in
tables_assign.py (the task service owns them)."""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime
from engine.storage.tables import KEY, _created_at, metadata

INSTANCE_STATUSES = ("running", "completed", "terminated", "error")
TOKEN_STATUSES = ("active", "waiting", "done", "cancelled")

flow_instances = sa.Table(
    "flow_instances",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("flow", KEY, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("form", KEY, nullable=True),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("initiator_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("parent_token_id", sa.BigInteger, nullable=True),
    sa.Column("depth", sa.Integer, nullable=False, server_default="0"),
    sa.Column("variables", JSONDocument, nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_detail", JSONDocument, nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint(sa.column("status").in_(INSTANCE_STATUSES), name="status"),
    sa.Index("ix_flow_instances_app_form_record_id", "app", "form", "record_id"),
    sa.Index("ix_flow_instances_app_flow_status", "app", "flow", "status"),
)

flow_tokens = sa.Table(
    "flow_tokens",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column(
        "instance_id",
        sa.BigInteger,
        sa.ForeignKey("flow_instances.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("node", KEY, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The node the token came from (joins count distinct arrivals; returns go back along it).
    sa.Column("came_from", KEY, nullable=True),
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Column("child_instance_id", sa.BigInteger, nullable=True),
    _created_at(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint(sa.column("status").in_(TOKEN_STATUSES), name="status"),
    sa.Index("ix_flow_tokens_instance_id_status", "instance_id", "status"),
)

flow_history = sa.Table(
    "flow_history",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column(
        "instance_id",
        sa.BigInteger,
        sa.ForeignKey("flow_instances.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("node", KEY, nullable=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("detail", JSONDocument, nullable=False),
    sa.UniqueConstraint("instance_id", "step"),
)

flow_hook_secrets = sa.Table(
    "flow_hook_secrets",
    metadata,
    sa.Column("app", KEY, primary_key=True),
    sa.Column("flow", KEY, primary_key=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    _created_at(),
)

__all__ = [
    "INSTANCE_STATUSES",
    "TOKEN_STATUSES",
    "flow_history",
    "flow_hook_secrets",
    "flow_instances",
    "flow_tokens",
]
