"""Add erased_users: the ids of deleted accounts, so late events about them store nothing.

Revision ID: b7e2d4c19a05
Revises: c3e5a7b9d123
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e2d4c19a05"
down_revision: str | Sequence[str] | None = "c3e5a7b9d123"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


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
