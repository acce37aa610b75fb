"""User tasks, their action log, assignment counters and user attributes (migration 0009).

Engine tables on the shared metadata of engine/storage/tables.py. A task group is one opening
of a user-task node for one flow token: it keeps the node's definition (mode, field
permissions, timeout) so that the tasks outlive later publishes of the flow.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.sqltypes import JSONDocument, RowId, UtcDateTime
from engine.storage.tables import KEY, _created_at, _lock_version, metadata

GROUP_STATUSES = ("open", "done", "cancelled")
TASK_STATUSES = ("waiting", "open", "done", "cancelled")

# No foreign key to flow_instances/flow_tokens: those belong to the flow runtime's migration and
# the task log outlives the instances it talks about.
flow_task_groups = sa.Table(
    "flow_task_groups",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("token_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("app", KEY, nullable=False),
    sa.Column("flow", KEY, nullable=False),
    sa.Column("flow_version", sa.Integer, nullable=False),
    sa.Column("node_key", KEY, nullable=False),
    sa.Column("form", KEY, nullable=True),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("initiator_id", sa.Integer, nullable=True),
    sa.Column("node", JSONDocument, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),
    _created_at(),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
    _lock_version(),
    sa.CheckConstraint(sa.column("status").in_(GROUP_STATUSES), name="status"),
)

flow_tasks = sa.Table(
    "flow_tasks",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column(
        "group_id",
        RowId,
        sa.ForeignKey("flow_task_groups.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("instance_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column(
        "assignee_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    # While delegated: the user the task goes back to once the delegate has handled it.
    sa.Column(
        "owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("is_pool", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("parent_task_id", RowId, nullable=True),
    sa.Column("signer_position", sa.String(8), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("due_at", UtcDateTime(), nullable=True),
    _created_at(),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
    sa.Column("completed_by", sa.Integer, nullable=True),
    sa.Column("read_at", UtcDateTime(), nullable=True),
    _lock_version(),
    sa.CheckConstraint(sa.column("status").in_(TASK_STATUSES), name="status"),
    sa.Index("ix_flow_tasks_assignee_status", "assignee_id", "status"),
)

# Who may claim a pool task (and, for the inbox, see it in "pool").
flow_task_candidates = sa.Table(
    "flow_task_candidates",
    metadata,
    sa.Column(
        "task_id", RowId, sa.ForeignKey("flow_tasks.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

# Append-only: who did what to which task, when (no foreign keys, like the audit log).
flow_task_actions = sa.Table(
    "flow_task_actions",
    metadata,
    sa.Column("id", RowId, primary_key=True),
    sa.Column("task_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("group_id", sa.BigInteger, nullable=True),
    sa.Column("instance_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor_id", sa.Integer, nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", JSONDocument, nullable=False),
)

# One row per round-robin scope: `value` is bumped atomically by each assignment.
assign_counters = sa.Table(
    "assign_counters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(255), nullable=False, unique=True),
    sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
)

# Skills ({name: level} or a list), regions and any other matching data, per user.
assign_user_attributes = sa.Table(
    "assign_user_attributes",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("attributes", JSONDocument, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    _lock_version(),
)

__all__ = [
    "GROUP_STATUSES",
    "TASK_STATUSES",
    "assign_counters",
    "assign_user_attributes",
    "flow_task_actions",
    "flow_task_candidates",
    "flow_task_groups",
    "flow_tasks",
]
