"""Transactional outbox, the writing side: events are rows written in the transaction that caused them.

An event is published if and only if its transaction committed: ``add_event(s)`` writes the rows and
a ``pg_notify`` that wakes the relay (``shared.messaging.relay``) when the transaction commits. Nothing
here talks to the broker, so a repository that writes events does not import the AMQP client.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from typing import Any

from opentelemetry import propagate
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Insert, Select
from sqlalchemy.sql.functions import FunctionElement

from shared.messaging.events import Event


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table inside a producing service's schema."""
    return Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Index("ix_outbox_pending", "seq", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def trace_headers() -> dict[str, str]:
    """The current trace context (W3C ``traceparent``) to carry across the broker.

    Without an active span (tracing off) a fresh root context is minted, so every message still
    carries a ``traceparent`` that a consumer can continue.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        carrier["traceparent"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    return carrier


def event_headers(event: Event) -> dict[str, str]:
    """The message headers of ``event``: its correlation id and the current trace context."""
    return {"correlation_id": event.correlation_id or "", **trace_headers()}


def outbox_rows(
    events: Sequence[Event], headers: Sequence[dict[str, str]] | None = None
) -> dict[str, list[Any]]:
    """The parameters of ``insert_events``: one array per column, one element per event.

    ``headers`` (one per event) when they were taken earlier, under the span that made each event.
    """
    return {
        "outbox_event_id": [event.id for event in events],
        "outbox_event_type": [event.type for event in events],
        "outbox_payload": [event.model_dump_json() for event in events],
        "outbox_headers": list(headers) if headers is not None else [event_headers(e) for e in events],
    }


@functools.cache
def insert_events(table: Table) -> Insert:
    """INSERT of any number of events (``outbox_rows``) as one statement with a fixed text.

    Built once per table and given arrays (``unnest``): a statement assembled per call cost more CPU
    to build and compile than its round trip, and a fixed text is compiled and prepared once.
    """
    rows = (
        func.unnest(
            bindparam("outbox_event_id", type_=ARRAY(Uuid)),
            bindparam("outbox_event_type", type_=ARRAY(Text)),
            bindparam("outbox_payload", type_=ARRAY(Text)),
            bindparam("outbox_headers", type_=ARRAY(JSONB)),
        )
        .table_valued("event_id", "event_type", "payload", "headers")
        .render_derived()
    )
    return table.insert().from_select(
        ["event_id", "event_type", "payload", "headers"],
        select(rows.c.event_id, rows.c.event_type, rows.c.payload, rows.c.headers),
    )


def wake_relay(table: Table) -> FunctionElement[Any]:
    """``pg_notify`` on the table's channel: delivered, and the relay woken, when the transaction commits."""
    return func.pg_notify(notify_channel(table.schema or "public"), "")


@functools.cache
def _insert_and_wake(table: Table) -> Select[Any]:
    # One statement, one round trip: the INSERT as a data-modifying CTE, then the NOTIFY.
    return select(wake_relay(table)).add_cte(insert_events(table).cte("outbox_insert"))


async def add_event(session: AsyncSession, table: Table, event: Event) -> None:
    """Write ``event`` in the session's transaction; the relay wakes when that transaction commits."""
    await add_events(session, table, [event])


async def add_events(
    session: AsyncSession,
    table: Table,
    events: Sequence[Event],
    headers: Sequence[dict[str, str]] | None = None,
) -> None:
    """Write ``events`` (in this order) as one statement in the session's transaction."""
    if not events:
        return
    rows = outbox_rows(events, headers)
    # One NOTIFY per transaction is enough to wake the relay (Postgres folds duplicates anyway).
    # Before its first statement a session has no transaction yet (None): that one must notify too.
    transaction = session.sync_session.get_transaction()
    if transaction is not None and session.info.get("outbox_notified") is transaction:
        await session.execute(insert_events(table), rows)
    else:
        await session.execute(_insert_and_wake(table), rows)
        session.info["outbox_notified"] = session.sync_session.get_transaction()
