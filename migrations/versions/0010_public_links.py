"""Public form links, tracking tokens and rate limits.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "public_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("options", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("expires_at", AT, nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("updated_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_public_links_created_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_public_links"),
        sa.UniqueConstraint("token", name="uq_public_links_token"),
    )
    op.create_index("ix_public_links_app_form", "public_links", ["app", "form"])
    op.create_table(
        "public_tracking",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["public_links.id"],
            name="fk_public_tracking_link_id_public_links",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_public_tracking"),
        sa.UniqueConstraint("token_hash", name="uq_public_tracking_token_hash"),
    )
    op.create_index("ix_public_tracking_link_id", "public_tracking", ["link_id"])
    op.create_table(
        "public_rate_counters",
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("window_start", AT, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name="pk_public_rate_counters"),
    )
    op.create_index(
        "ix_public_rate_counters_window_start", "public_rate_counters", ["window_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_public_rate_counters_window_start", table_name="public_rate_counters")
    op.drop_table("public_rate_counters")
    op.drop_index("ix_public_tracking_link_id", table_name="public_tracking")
    op.drop_table("public_tracking")
    op.drop_index("ix_public_links_app_form", table_name="public_links")
    op.drop_table("public_links")
