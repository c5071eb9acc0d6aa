"""The replica's ear: one Postgres connection that LISTENs for new stream entries, kept alive.

A dropped connection loses the notifications sent while it was down, so every (re)connect is followed
by a resync (``Hub.resync``) that reads what the live connections are missing. A half-open TCP link
would lose them silently, hence the periodic probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from realtime.metrics import RealtimeMetrics
from realtime.streams.frames import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

LISTENER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class NotifyListener:
    def __init__(
        self,
        dsn: str,
        *,
        on_notice: Callable[[str], None],
        on_connect: Callable[[], Awaitable[None]],
        metrics: RealtimeMetrics,
        probe_interval: float = 10.0,
        max_backoff: float = 10.0,
    ) -> None:
        self.dsn = asyncpg_dsn(dsn)
        self.on_notice = on_notice
        self.on_connect = on_connect
        self.metrics = metrics
        self.probe_interval = probe_interval
        self.max_backoff = max_backoff
        self.listening = False
        self._stopping = asyncio.Event()
        # Set by stop() and by a lost connection: either ends the wait between probes at once.
        self._wake = asyncio.Event()

    async def check(self) -> None:
        """Readiness: raises unless this replica is hearing new entries."""
        if not self.listening:
            raise ConnectionError("not listening for stream entries")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                await self._listen_until_lost()
                backoff = 0.2
            except LISTENER_ERRORS as exc:
                log.warning("LISTEN connection down", extra={"error": str(exc) or type(exc).__name__})
            finally:
                self._set_listening(False)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _listen_until_lost(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, timeout=5, server_settings={"application_name": "realtime-listener"}
        )
        self._wake.clear()
        conn.add_termination_listener(lambda _: self._wake.set())
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            self._set_listening(True)
            log.info("listening for stream entries", extra={"channel": NOTIFY_CHANNEL})
            await self.on_connect()
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.probe_interval)
                if self._stopping.is_set():
                    return
                # Raises on a closed or half-open connection: both mean reconnect and resync.
                await asyncio.wait_for(conn.fetchval("SELECT 1"), 5)
        finally:
            if not conn.is_closed():
                with contextlib.suppress(*LISTENER_ERRORS):
                    await asyncio.wait_for(conn.close(), 5)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_notice(payload)

    def _set_listening(self, value: bool) -> None:
        self.listening = value
        self.metrics.listener_up.set(1 if value else 0)
