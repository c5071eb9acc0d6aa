"""Deletes idempotency keys past their retention; ``orders.workers`` runs it periodically on every replica.

Several replicas purging at once is harmless: each DELETE removes what is left.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orders.idempotency.service import purge_expired
from shared.db.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


async def purge_once(sessions: async_sessionmaker[AsyncSession], retention: timedelta) -> int:
    async with unit_of_work(sessions) as uow:
        deleted = await purge_expired(uow.session, retention)
    if deleted:
        log.info("purged expired idempotency keys", extra={"deleted": deleted})
    return deleted
