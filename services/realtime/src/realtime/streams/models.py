"""Tables of the realtime schema: each user's stream, its offset counter, the consumer's inbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from realtime.settings import SCHEMA
from shared.db.engine import schema_metadata
from shared.jobs.tables import job_runs_table, jobs_table
from shared.messaging.inbox import inbox_table

METADATA = schema_metadata(SCHEMA)

# One row per user: the last offset handed out. Incremented in the storing transaction, so the row lock
# serialises concurrent writers of one user (on any replica) and offsets are gapless; it outlives
# trimming, so offsets never restart.
USER_OFFSETS = Table(
    "user_offsets",
    METADATA,
    Column("user_id", Uuid, nullable=False),
    Column("last_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", name="pk_user_offsets"),
)

STREAM_EVENTS = Table(
    "stream_events",
    METADATA,
    Column("user_id", Uuid, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("data", JSONB, nullable=False),
    # When the event happened (its ``occurred_at``): the frame's ``ts``.
    Column("ts", DateTime(timezone=True), nullable=False),
    # When it was stored here: what retention by age looks at.
    Column("stored_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "offset", name="pk_stream_events"),
    UniqueConstraint("event_id", name="uq_stream_events_event_id"),
    Index("ix_stream_events_stored_at", "stored_at"),
)

# One row per open connection, renewed by its replica (realtime.delivery.leases): the per-user cap
# across replicas.
STREAM_LEASES = Table(
    "stream_leases",
    METADATA,
    Column("id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("id", name="pk_stream_leases"),
    Index("ix_stream_leases_user_id", "user_id"),
)

# The ids of deleted accounts: their streams were erased, and events about them that arrive later (an
# order cancelled by the deletion, a retry) must not start a new one.
ERASED_USERS = Table(
    "erased_users",
    METADATA,
    Column("user_id", Uuid, nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", name="pk_erased_users"),
)

INBOX = inbox_table(METADATA)
# trim-streams deletes the inbox rows older than the retention by this column, in batches.
Index("ix_inbox_handled_at", INBOX.c.handled_at)

# The scheduled jobs' state and runs (shared.jobs).
JOBS = jobs_table(METADATA)
JOB_RUNS = job_runs_table(METADATA)
