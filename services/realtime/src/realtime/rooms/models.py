"""Tables of the rooms: the room (its row is also its offset counter), messages, presence, replicas."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)

from realtime.streams.models import METADATA

# ``last_offset`` is the room's counter: the storing transaction increments it, so its row lock
# serialises concurrent writers (on any replica) and offsets are gapless; it outlives trimming.
ROOMS = Table(
    "rooms",
    METADATA,
    Column("id", Uuid, nullable=False),
    Column("name", String(100), nullable=False),
    Column("topic", String(500), nullable=False),
    Column("created_by", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", name="pk_rooms"),
    Index("ix_rooms_created_at_id", "created_at", "id"),
)

ROOM_MESSAGES = Table(
    "room_messages",
    METADATA,
    Column("room_id", Uuid, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("user_name", String(100), nullable=False),
    Column("text", String(2000), nullable=False),
    Column("client_id", Uuid, nullable=True),
    # Taken after the counter lock, so it rises with the offset and age trimming cuts only a prefix.
    Column("ts", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("room_id", "offset", name="pk_room_messages"),
    Index("ix_room_messages_ts", "ts"),
    # The same client_id from the same user in one room is one message (a retried say).
    Index(
        "uq_room_messages_client_id",
        "room_id",
        "user_id",
        "client_id",
        unique=True,
        postgresql_where=text("client_id IS NOT NULL"),
    ),
)

# One row per replica that is alive: renewed every heartbeat. A replica's presence rows count only while
# its row has not expired, and a sweep by any replica drops an expired replica's rows (and says so).
REPLICAS = Table(
    "replicas",
    METADATA,
    Column("id", Uuid, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("id", name="pk_replicas"),
)

# Who is in which room through which replica, counted by connections.
ROOM_MEMBERS = Table(
    "room_members",
    METADATA,
    Column("room_id", Uuid, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("replica_id", Uuid, nullable=False),
    Column("user_name", String(100), nullable=False),
    Column("connections", Integer, nullable=False),
    PrimaryKeyConstraint("room_id", "user_id", "replica_id", name="pk_room_members"),
    Index("ix_room_members_replica_id", "replica_id"),
)

# Only broadcasts too big for a NOTIFY payload: the notice names the row, each replica reads it once.
BROADCASTS = Table(
    "broadcasts",
    METADATA,
    Column("id", Uuid, nullable=False),
    Column("frame", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("id", name="pk_broadcasts"),
)
