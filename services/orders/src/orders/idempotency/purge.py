"""Deletes idempotency keys past their retention, every ``interval`` seconds, on every replica.

Several replicas purging at once is harmless: each DELETE removes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
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


class KeyPurger:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, retention: timedelta, interval: float
    ) -> None:
        self.sessions = sessions
        self.retention = retention
        self.interval = interval
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set():
                return
            try:
                await purge_once(self.sessions, self.retention)
            except (SQLAlchemyError, OSError) as exc:
                # The next round tries again; keys only live a little longer meanwhile.
                log.warning("idempotency key purge failed", extra={"error": str(exc)})
            except Exception:
                # Anything else is a bug, but must not end the purge for the life of the process.
                log.exception("idempotency key purge failed unexpectedly")
