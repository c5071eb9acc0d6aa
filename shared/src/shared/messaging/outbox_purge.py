"""Deleting outbox rows the broker confirmed long ago (the relay runs it every ten minutes)."""

from __future__ import annotations

from sqlalchemy import Table, func
from sqlalchemy.ext.asyncio import AsyncEngine


async def purge_published(engine: AsyncEngine, table: Table, older_than_seconds: float) -> int:
    """Delete rows confirmed more than ``older_than_seconds`` ago; return how many went."""
    async with engine.begin() as conn:
        result = await conn.execute(
            table.delete().where(
                table.c.published_at.is_not(None),
                table.c.published_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
            )
        )
    return int(result.rowcount or 0)
