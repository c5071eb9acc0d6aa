"""Compare e-mail addresses by a stored key (NFC + Unicode case folding), not by lower(email).

Postgres' lower() folds by the database's locale and Python's by Unicode, so the two disagreed on
addresses such as "İ@example.com", and NFC/NFD spellings of one address made two accounts. The key
is computed in Python, the one place, and a unique index on it replaces the one on lower(email).
Existing rows are keyed here; two accounts whose addresses only now compare equal stop the
upgrade at the index (an operator merges or renames one and runs it again).

Revision ID: 5c1e8f0a7d21
Revises: a1c3e5f7b901
Create Date: 2026-12-06 17:00:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1e8f0a7d21"
down_revision: str | Sequence[str] | None = "a1c3e5f7b901"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "users"


def _key(address: str) -> str:
    # A copy of users.accounts.models.email_key as of this revision: a migration must not change
    # meaning when the application code does.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", address.strip()).casefold())


def upgrade() -> None:
    op.add_column("users", sa.Column("email_key", sa.Text(), nullable=True), schema=SCHEMA)
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, email FROM users.users")).all()
    for user_id, email in rows:
        conn.execute(
            sa.text("UPDATE users.users SET email_key = :key WHERE id = :id"),
            {"key": _key(email), "id": user_id},
        )
    op.alter_column("users", "email_key", nullable=False, schema=SCHEMA)
    op.create_index("ux_users_email_key", "users", ["email_key"], unique=True, schema=SCHEMA)
    op.drop_index("ix_users_email_lower", table_name="users", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("ix_users_email_lower", "users", [sa.text("lower(email)")], unique=True, schema=SCHEMA)
    op.drop_index("ux_users_email_key", table_name="users", schema=SCHEMA)
    op.drop_column("users", "email_key", schema=SCHEMA)
