"""Record import jobs: status and row counts of each CSV/XLSX import, polled by the client.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here, not imported, so this revision never changes under our feet.
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
KEY = sa.String(64)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = ("pending", "running", "done", "failed")


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("app", KEY, nullable=False),
        sa.Column("form", KEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("options", JSON, nullable=False),
        _count("rows_read"),
        _count("rows_written"),
        _count("rows_failed"),
        sa.Column("problems", JSON, nullable=True),
        sa.Column("created_by", sa.Integer, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_import_jobs"),
        sa.CheckConstraint(_in("status", STATUSES), name=op.f("ck_import_jobs_status")),
    )
    op.create_index("ix_import_jobs_form", "import_jobs", ["app", "form"])


def downgrade() -> None:
    op.drop_index("ix_import_jobs_form", table_name="import_jobs")
    op.drop_table("import_jobs")
