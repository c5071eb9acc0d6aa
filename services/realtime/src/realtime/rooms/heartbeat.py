"""The presence worker: this replica's heartbeat, the sweep of dead replicas, and its goodbye."""

from __future__ import annotations

import asyncio
import logging

from realtime.rooms.hub import RoomHub
from realtime.rooms.limits import SayBuckets
from realtime.streams.store import DATABASE_ERRORS
from shared.service.backoff import pause

log = logging.getLogger(__name__)


class PresenceHeartbeat:
    def __init__(self, rooms: RoomHub, buckets: SayBuckets, *, interval: float) -> None:
        self.rooms = rooms
        self.buckets = buckets
        self.interval = interval
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        presence = self.rooms.presence
        try:
            while not self._stopping.is_set():
                try:
                    if await presence.heartbeat() and self.rooms.rooms:
                        log.warning("this replica was taken for dead; counting its room members again")
                        await self.rooms.reassert()
                    await presence.sweep()
                except DATABASE_ERRORS as exc:
                    log.warning("presence heartbeat failed", extra={"error": str(exc) or type(exc).__name__})
                self.buckets.prune()
                await pause(self.interval, self._stopping)
        finally:
            await self._goodbye()

    async def _goodbye(self) -> None:
        """Leave every room at once, so the other replicas' members hear it now, not after the TTL."""
        try:
            await self.rooms.close()
            await self.rooms.presence.sweep(goodbye=True)
        except DATABASE_ERRORS:
            log.warning("no presence goodbye; the other replicas drop this one after the TTL", exc_info=True)
