"""Retention: each stream keeps its newest events, for a bounded time and a bounded count per user.

Runs as the ``trim-streams`` job (realtime.jobs, once per due time across replicas) and on demand with
``python -m realtime trim`` (an advisory lock keeps the two from trimming at once). Deletes go in small
batches, each its own transaction, so the consumer's inserts never wait long behind them. The offset
counters stay: a trimmed stream goes on from where it was, and a client resuming from a trimmed offset
gets ``recovered: false``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# The statements name schema ``realtime`` literally: constant SQL, nothing interpolated.

# Any constant shared by the replicas; names "realtime retention" among the advisory locks.
LOCK_KEY = 0x5245_414C  # "REAL"

_BY_COUNT = text(
    """
    DELETE FROM realtime.stream_events WHERE ctid IN (
        SELECT s.ctid FROM realtime.stream_events s
        JOIN realtime.user_offsets u ON u.user_id = s.user_id
        WHERE s."offset" <= u.last_offset - :max_events
        LIMIT :batch)
    """
)
_BY_AGE = text(
    """
    DELETE FROM realtime.stream_events WHERE ctid IN (
        SELECT ctid FROM realtime.stream_events
        WHERE stored_at < now() - make_interval(secs => :seconds)
        LIMIT :batch)
    """
)
# The inbox only has to outlive redeliveries; a stream's retention is far longer than any retry.
_INBOX = text(
    """
    DELETE FROM realtime.inbox WHERE ctid IN (
        SELECT ctid FROM realtime.inbox
        WHERE handled_at < now() - make_interval(secs => :seconds)
        LIMIT :batch)
    """
)


@dataclass(frozen=True, slots=True)
class TrimResult:
    by_count: int
    by_age: int
    inbox: int
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_age: timedelta
    max_events: int
    batch: int = 5000


async def _delete_batches(conn: AsyncConnection, statement: TextClause, batch: int, **params: Any) -> int:
    total = 0
    while True:
        async with conn.begin():
            result = await conn.execute(statement, {"batch": batch, **params})
        deleted = int(result.rowcount or 0)
        total += deleted
        if deleted < batch:
            return total


async def trim(engine: AsyncEngine, policy: RetentionPolicy) -> TrimResult:
    """Delete what the policy no longer keeps; skipped when another replica is trimming right now."""
    async with engine.connect() as conn:
        locked = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY})
        await conn.commit()
        if not locked:
            return TrimResult(0, 0, 0, skipped=True)
        try:
            seconds = policy.max_age.total_seconds()
            by_count = await _delete_batches(conn, _BY_COUNT, policy.batch, max_events=policy.max_events)
            by_age = await _delete_batches(conn, _BY_AGE, policy.batch, seconds=seconds)
            inbox = await _delete_batches(conn, _INBOX, policy.batch, seconds=seconds)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            await conn.commit()
    return TrimResult(by_count, by_age, inbox)
