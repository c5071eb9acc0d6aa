"""Deleting many rows without getting in the requests' way: small batches, each its own transaction.

A single ``DELETE ... WHERE expired`` over a million rows holds its row locks (and a long transaction
that keeps vacuum from reclaiming anything) until it ends; a request updating one of those rows waits
behind it. Here each batch locks at most ``batch`` rows for a few milliseconds, skips rows a request
holds locked right now (``SKIP LOCKED``: they go in a later batch or a later run), and commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.jobs.job import Job, JobContext

DEFAULT_BATCH = 5000
# Published events are kept a week for an operator to look at; handled event ids as long, which
# outlives any redelivery (retries give up within minutes).
OUTBOX_RETENTION = timedelta(days=7)
INBOX_RETENTION = timedelta(days=7)


async def delete_in_batches(
    engine: AsyncEngine, table: Table, *where: ColumnElement[bool], batch: int = DEFAULT_BATCH
) -> int:
    """Delete the rows of ``table`` matching ``where``; return how many went."""
    ctid: Any = literal_column("ctid")
    doomed = select(ctid).select_from(table).where(*where).limit(batch).with_for_update(skip_locked=True)
    statement = table.delete().where(ctid.in_(doomed.scalar_subquery()))
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = int((await conn.execute(statement)).rowcount or 0)
        total += deleted
        if deleted < batch:
            return total


def purge_job(
    name: str,
    schedule: str,
    engine: AsyncEngine,
    table: Table,
    expired: Callable[[datetime], ColumnElement[bool]],
) -> Job:
    """A job deleting the rows of ``table`` that ``expired(the run's start)`` selects, in batches."""

    async def run(ctx: JobContext) -> str:
        deleted = await delete_in_batches(engine, table, expired(ctx.started_at))
        return f"deleted {deleted} rows of {table.name}"

    return Job.define(name, schedule, run)


def purge_outbox_job(engine: AsyncEngine, table: Table, retention: timedelta = OUTBOX_RETENTION) -> Job:
    """``purge-outbox`` (``*/10 * * * *``): events the broker confirmed more than ``retention`` ago."""
    return purge_job(
        "purge-outbox", "*/10 * * * *", engine, table, lambda now: table.c.published_at < now - retention
    )


def purge_inbox_job(
    engine: AsyncEngine, table: Table, schedule: str, retention: timedelta = INBOX_RETENTION
) -> Job:
    """``purge-inbox``: handled event ids kept ``retention``, far longer than any redelivery takes."""
    return purge_job("purge-inbox", schedule, engine, table, lambda now: table.c.handled_at < now - retention)
