"""Create rooms, room_messages, replicas, room_members and broadcasts (contract section 6).

Revision ID: c3f9a1d2e8b4
Revises: a7e1c4b9d2f3
Create Date: 2026-12-06 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f9a1d2e8b4"
down_revision: str | Sequence[str] | None = "a7e1c4b9d2f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "realtime"


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(500), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rooms"),
        schema=SCHEMA,
    )
    op.create_index("ix_rooms_created_at_id", "rooms", ["created_at", "id"], schema=SCHEMA)
    op.create_table(
        "room_messages",
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "offset", name="pk_room_messages"),
        sa.ForeignKeyConstraint(
            ["room_id"], [f"{SCHEMA}.rooms.id"], name="fk_room_messages_room_id_rooms", ondelete="CASCADE"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_room_messages_ts", "room_messages", ["ts"], schema=SCHEMA)
    # The same client_id from the same user in one room is one message (a retried say).
    op.create_index(
        "uq_room_messages_client_id",
        "room_messages",
        ["room_id", "user_id", "client_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )
    op.create_table(
        "replicas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replicas"),
        schema=SCHEMA,
    )
    op.create_table(
        "room_members",
        sa.Column("room_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("replica_id", sa.Uuid(), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("connections", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "user_id", "replica_id", name="pk_room_members"),
        sa.ForeignKeyConstraint(
            ["room_id"], [f"{SCHEMA}.rooms.id"], name="fk_room_members_room_id_rooms", ondelete="CASCADE"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_room_members_replica_id", "room_members", ["replica_id"], schema=SCHEMA)
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("frame", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_broadcasts"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("broadcasts", schema=SCHEMA)
    op.drop_table("room_members", schema=SCHEMA)
    op.drop_table("replicas", schema=SCHEMA)
    op.drop_table("room_messages", schema=SCHEMA)
    op.drop_table("rooms", schema=SCHEMA)
