"""A Postgres connection that LISTENs on one channel: the wake-up of the relays and the fan-out.

Written once for the outbox relay, the e-mail sender and realtime's listener. A notification is only a
hint (one sent while the connection was down is lost), so each user also polls or resyncs after a
(re)connect; ``probe`` finds a half-open link that would otherwise lose them silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

LISTEN_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def asyncpg_dsn(url: str) -> str:
    """asyncpg's own connect takes ``postgresql://``, not SQLAlchemy's dialect URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class ChannelListener:
    """``on_notify(payload)`` for each notification on ``channel``; ``on_lost()`` when the link drops."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_lost: Callable[[], None] | None = None,
        application_name: str | None = None,
    ) -> None:
        self.dsn = asyncpg_dsn(dsn)
        self.channel = channel
        self.on_notify = on_notify
        self.on_lost = on_lost
        self.application_name = application_name
        self._conn: asyncpg.Connection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def ensure(self) -> bool:
        """Connect and LISTEN unless already listening; True when this (re)connected."""
        if self.connected:
            return False
        settings = {"application_name": self.application_name} if self.application_name else None
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, timeout=5, server_settings=settings)
        try:
            if self.on_lost is not None:
                on_lost = self.on_lost
                conn.add_termination_listener(lambda _: on_lost())
            await conn.add_listener(self.channel, self._notified)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return True

    async def probe(self, timeout: float = 5.0) -> None:
        """Raises on a closed or half-open connection."""
        if self._conn is None:
            raise ConnectionError("not listening")
        await asyncio.wait_for(self._conn.fetchval("SELECT 1"), timeout)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(*LISTEN_ERRORS):
                await asyncio.wait_for(conn.close(), 5)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_notify(payload)
