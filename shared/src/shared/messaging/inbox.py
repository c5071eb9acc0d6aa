"""The inbox: events a consumer has handled, written in the handler's own transaction.

A redelivered event finds its row there and is acked and skipped (``shared.messaging.consumer``).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, String, Table, Uuid, func


def inbox_table(metadata: MetaData) -> Table:
    """Events a consumer has handled, written in the handler's own transaction."""
    return Table(
        "inbox",
        metadata,
        Column("event_id", Uuid, nullable=False),
        Column("consumer", String(100), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("event_id", "consumer", name="pk_inbox"),
    )
