"""Add erased_users: the ids of deleted accounts, whose streams are gone and stay gone.

Revision ID: c3a9e5f27b18
Revises: c3f9a1d2e8b4
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3a9e5f27b18"
down_revision: str | Sequence[str] | None = "c3f9a1d2e8b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "realtime"


def upgrade() -> None:
    op.create_table(
        "erased_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_erased_users"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("erased_users", schema=SCHEMA)
