"""The replica's ear: one Postgres connection that LISTENs for new stream entries, kept alive.

A dropped connection loses the notifications sent while it was down, so every (re)connect is followed
by a resync (``Hub.resync``) that reads what the live connections are missing. A half-open TCP link
would lose them silently, hence the periodic probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from realtime.metrics import RealtimeMetrics
from realtime.streams.frames import NOTIFY_CHANNEL
from shared.messaging.listen import LISTEN_ERRORS, ChannelListener
from shared.service.backoff import Backoff, pause

log = logging.getLogger(__name__)


class NotifyListener:
    def __init__(
        self,
        dsn: str,
        *,
        on_notice: Callable[[str], None],
        on_connect: Callable[[], Awaitable[None]],
        metrics: RealtimeMetrics | None,
        probe_interval: float = 10.0,
        max_backoff: float = 10.0,
        channel: str = NOTIFY_CHANNEL,
    ) -> None:
        self.on_connect = on_connect
        self.metrics = metrics
        self.probe_interval = probe_interval
        self.max_backoff = max_backoff
        self.listening = False
        self._stopping = asyncio.Event()
        # Set by stop() and by a lost connection: either ends the wait between probes at once.
        self._wake = asyncio.Event()
        self.channel = channel
        self._channel = ChannelListener(
            dsn,
            channel,
            on_notice,
            on_lost=self._wake.set,
            application_name=f"realtime-listener-{channel}",
        )

    async def check(self) -> None:
        """Readiness: raises unless this replica is hearing new entries."""
        if not self.listening:
            raise ConnectionError("not listening for stream entries")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff(maximum=self.max_backoff)
        while not self._stopping.is_set():
            try:
                await self._listen_until_lost()
                backoff.reset()
            except LISTEN_ERRORS as exc:
                log.warning("LISTEN connection down", extra={"error": str(exc) or type(exc).__name__})
            finally:
                self._set_listening(False)
                await self._channel.close()
            if not self._stopping.is_set():
                await pause(next(backoff), self._stopping)

    async def _listen_until_lost(self) -> None:
        self._wake.clear()
        await self._channel.ensure()
        self._set_listening(True)
        log.info("listening", extra={"channel": self.channel})
        await self.on_connect()
        while not self._stopping.is_set():
            await pause(self.probe_interval, self._wake)
            self._wake.clear()
            if self._stopping.is_set():
                return
            # Raises on a closed or half-open connection: both mean reconnect and resync.
            await self._channel.probe()

    def _set_listening(self, value: bool) -> None:
        self.listening = value
        if self.metrics is not None:  # the gauge is the user streams' listener's
            self.metrics.listener_up.set(1 if value else 0)
