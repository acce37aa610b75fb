"""User tasks, their action log, assignment counters and user attributes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported, so this revision never changes under our feet.
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.Integer(), server_default="1", nullable=False)


def upgrade() -> None:
    op.create_table(
        "assign_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assign_counters"),
        sa.UniqueConstraint("scope", name="uq_assign_counters_scope"),
    )
    op.create_table(
        "assign_user_attributes",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        _version(),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_assign_user_attributes_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_assign_user_attributes"),
    )
    op.create_table(
        "flow_task_actions",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("group_id", sa.BigInteger(), nullable=True),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_task_actions"),
    )
    op.create_index("ix_flow_task_actions_instance_id", "flow_task_actions", ["instance_id"])
    op.create_index("ix_flow_task_actions_task_id", "flow_task_actions", ["task_id"])
    op.create_table(
        "flow_task_groups",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column("node_key", sa.String(64), nullable=False),
        sa.Column("form", sa.String(64), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("initiator_id", sa.Integer(), nullable=True),
        sa.Column("node", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        _version(),
        sa.CheckConstraint("status IN ('open', 'done', 'cancelled')", name="status"),
        sa.PrimaryKeyConstraint("id", name="pk_flow_task_groups"),
    )
    op.create_index("ix_flow_task_groups_instance_id", "flow_task_groups", ["instance_id"])
    op.create_index("ix_flow_task_groups_token_id", "flow_task_groups", ["token_id"])
    op.create_table(
        "flow_tasks",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("group_id", ROW_ID, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("is_pool", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("parent_task_id", ROW_ID, nullable=True),
        sa.Column("signer_position", sa.String(8), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("due_at", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("completed_at", TIME, nullable=True),
        sa.Column("completed_by", sa.Integer(), nullable=True),
        sa.Column("read_at", TIME, nullable=True),
        _version(),
        sa.CheckConstraint("status IN ('waiting', 'open', 'done', 'cancelled')", name="status"),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name="fk_flow_tasks_assignee_id_users",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["flow_task_groups.id"],
            name="fk_flow_tasks_group_id_flow_task_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_flow_tasks_owner_id_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_tasks"),
    )
    op.create_index("ix_flow_tasks_assignee_status", "flow_tasks", ["assignee_id", "status"])
    op.create_index("ix_flow_tasks_group_id", "flow_tasks", ["group_id"])
    op.create_index("ix_flow_tasks_instance_id", "flow_tasks", ["instance_id"])
    op.create_table(
        "flow_task_candidates",
        sa.Column("task_id", ROW_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["flow_tasks.id"],
            name="fk_flow_task_candidates_task_id_flow_tasks",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_flow_task_candidates_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "user_id", name="pk_flow_task_candidates"),
    )
    op.create_index("ix_flow_task_candidates_user_id", "flow_task_candidates", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_flow_task_candidates_user_id", table_name="flow_task_candidates")
    op.drop_table("flow_task_candidates")
    for name in ("ix_flow_tasks_instance_id", "ix_flow_tasks_group_id"):
        op.drop_index(name, table_name="flow_tasks")
    op.drop_index("ix_flow_tasks_assignee_status", table_name="flow_tasks")
    op.drop_table("flow_tasks")
    op.drop_index("ix_flow_task_groups_token_id", table_name="flow_task_groups")
    op.drop_index("ix_flow_task_groups_instance_id", table_name="flow_task_groups")
    op.drop_table("flow_task_groups")
    op.drop_index("ix_flow_task_actions_task_id", table_name="flow_task_actions")
    op.drop_index("ix_flow_task_actions_instance_id", table_name="flow_task_actions")
    op.drop_table("flow_task_actions")
    op.drop_table("assign_user_attributes")
    op.drop_table("assign_counters")
