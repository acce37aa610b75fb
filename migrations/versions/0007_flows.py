"""Flow instances, tokens, history (the timeline) and inbound webhook secrets.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "flow_instances",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(64), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("initiator_id", sa.Integer(), nullable=True),
        sa.Column("parent_token_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_detail", JSON, nullable=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint(
            _in("status", ("running", "completed", "terminated", "error")),
            name=op.f("ck_flow_instances_status"),
        ),
        sa.ForeignKeyConstraint(
            ["initiator_id"], ["users.id"], name="fk_flow_instances_initiator_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_instances"),
    )
    op.create_index(
        "ix_flow_instances_app_form_record_id", "flow_instances", ["app", "form", "record_id"]
    )
    op.create_index(
        "ix_flow_instances_app_flow_status", "flow_instances", ["app", "flow", "status"]
    )
    op.create_table(
        "flow_tokens",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("came_from", sa.String(64), nullable=True),
        sa.Column("due_at", WHEN, nullable=True),
        sa.Column("child_instance_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint(
            _in("status", ("active", "waiting", "done", "cancelled")),
            name=op.f("ck_flow_tokens_status"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["flow_instances.id"],
            name="fk_flow_tokens_instance_id_flow_instances",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_tokens"),
    )
    op.create_index("ix_flow_tokens_instance_id_status", "flow_tokens", ["instance_id", "status"])
    op.create_table(
        "flow_history",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(64), nullable=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["flow_instances.id"],
            name="fk_flow_history_instance_id_flow_instances",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flow_history"),
        sa.UniqueConstraint("instance_id", "step", name="uq_flow_history_instance_id_step"),
    )
    op.create_table(
        "flow_hook_secrets",
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("app", "flow", name="pk_flow_hook_secrets"),
    )


def downgrade() -> None:
    op.drop_table("flow_hook_secrets")
    op.drop_table("flow_history")
    op.drop_index("ix_flow_tokens_instance_id_status", table_name="flow_tokens")
    op.drop_table("flow_tokens")
    op.drop_index("ix_flow_instances_app_flow_status", table_name="flow_instances")
    op.drop_index("ix_flow_instances_app_form_record_id", table_name="flow_instances")
    op.drop_table("flow_instances")
