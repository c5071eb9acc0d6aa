"""A Postgres connection that LISTENs on one channel: the wake-up of the relays and the fan-out.

Written once for the outbox relay, the e-mail sender and realtime's listener. A notification is only a
hint (one sent while the connection was down is lost), so each user also polls or resyncs after a
(re)connect; ``probe`` finds a half-open link that would otherwise lose them silently.

With ``locks``, the connection LISTENs only while it holds one of those session advisory locks, so only
as many of several processes listening on a channel are woken as there are locks (the outbox relays:
``shared.messaging.relay`` says why); the others try again at each ``ensure``. Postgres frees a lock the
moment its holder's session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
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


TRY_LOCK = "SELECT pg_try_advisory_lock($1, $2)"


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
        locks: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.dsn = asyncpg_dsn(dsn)
        self.channel = channel
        self.on_notify = on_notify
        self.on_lost = on_lost
        self.application_name = application_name
        self.locks = tuple(locks)
        self._conn: asyncpg.Connection | None = None
        self._listening = False

    def _open(self) -> asyncpg.Connection | None:
        """The connection, unless there is none or it has closed."""
        return self._conn if self._conn is not None and not self._conn.is_closed() else None

    @property
    def connected(self) -> bool:
        return self._open() is not None

    @property
    def listening(self) -> bool:
        """Connected and LISTENing (with ``locks``: holding one)."""
        return self._listening and self.connected

    async def ensure(self) -> bool:
        """Connect and LISTEN unless already listening (with ``locks``: once one is taken); True when
        this (re)connected."""
        if (open_conn := self._open()) is not None:
            if not self._listening:
                await self._listen(open_conn)
            return False
        settings = {"application_name": self.application_name} if self.application_name else None
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, timeout=5, server_settings=settings)
        self._listening = False
        try:
            if self.on_lost is not None:
                on_lost = self.on_lost
                conn.add_termination_listener(lambda _: on_lost())
            await self._listen(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return True

    async def _listen(self, conn: asyncpg.Connection) -> None:
        if self.locks and not await self._take_a_lock(conn):
            return
        await conn.add_listener(self.channel, self._notified)
        self._listening = True

    async def _take_a_lock(self, conn: asyncpg.Connection) -> bool:
        for key in self.locks:  # one at a time: the first free one, and only that one, is taken
            if await conn.fetchval(TRY_LOCK, *key):
                return True
        return False

    async def probe(self, timeout: float = 5.0) -> None:
        """Raises on a closed or half-open connection."""
        if self._conn is None:
            raise ConnectionError("not listening")
        await asyncio.wait_for(self._conn.fetchval("SELECT 1"), timeout)

    async def close(self) -> None:
        conn, self._conn = self._open(), None
        self._listening = False
        if conn is not None:
            with contextlib.suppress(*LISTEN_ERRORS):
                await asyncio.wait_for(conn.close(), 5)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_notify(payload)
