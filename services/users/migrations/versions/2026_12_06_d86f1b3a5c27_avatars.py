"""Add avatars (the re-encoded images) and users.avatar_etag.

Revision ID: d86f1b3a5c27
Revises: a41c7e9d2f63
Create Date: 2026-12-06 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d86f1b3a5c27"
down_revision: str | Sequence[str] | None = "a41c7e9d2f63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "users"


def upgrade() -> None:
    op.add_column("users", sa.Column("avatar_etag", sa.String(64), nullable=True), schema=SCHEMA)
    op.create_table(
        "avatars",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sa.String(50), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.users.id"], name="fk_avatars_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_avatars"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("avatars", schema=SCHEMA)
    op.drop_column("users", "avatar_etag", schema=SCHEMA)
