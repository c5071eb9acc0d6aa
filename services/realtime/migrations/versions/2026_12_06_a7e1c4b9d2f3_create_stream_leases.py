"""Create stream_leases: one row per open WebSocket or SSE connection, renewed by its replica.

Revision ID: a7e1c4b9d2f3
Revises: d4f6b8c0e234
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7e1c4b9d2f3"
down_revision: str | Sequence[str] | None = "d4f6b8c0e234"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "realtime"


def upgrade() -> None:
    op.create_table(
        "stream_leases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stream_leases"),
        schema=SCHEMA,
    )
    op.create_index("ix_stream_leases_user_id", "stream_leases", ["user_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("stream_leases", schema=SCHEMA)
