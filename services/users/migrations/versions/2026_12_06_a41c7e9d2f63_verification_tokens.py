"""Add users.email_verified and verification_tokens (e-mail verification and password reset).

Revision ID: a41c7e9d2f63
Revises: 5c1e8f0a7d21
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a41c7e9d2f63"
down_revision: str | Sequence[str] | None = "5c1e8f0a7d21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "users"


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("email_verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "verification_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'password_reset')", name="ck_verification_tokens_purpose"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.users.id"],
            name="fk_verification_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_verification_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_verification_tokens_token_hash"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_verification_tokens_user_id_purpose_created_at",
        "verification_tokens",
        ["user_id", "purpose", "created_at"],
        schema=SCHEMA,
    )
    op.create_index("ix_verification_tokens_expires_at", "verification_tokens", ["expires_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("verification_tokens", schema=SCHEMA)
    op.drop_column("users", "email_verified", schema=SCHEMA)
