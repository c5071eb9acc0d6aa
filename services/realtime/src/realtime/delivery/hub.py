"""This replica's open connections by user, and the fan-out of each stream entry to them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

from realtime.delivery.subscriber import CLOSE_FORBIDDEN, Subscriber
from realtime.metrics import RealtimeMetrics
from realtime.streams.frames import Frame, decode_notice, is_revocation, notice_user
from realtime.streams.store import DATABASE_ERRORS, StreamStore

log = logging.getLogger(__name__)


class Hub:
    """Routes NOTIFY payloads to the local subscribers of their user; owns no connection itself."""

    def __init__(self, store: StreamStore, metrics: RealtimeMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self._users: dict[str, list[Subscriber]] = {}
        self._fetches: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._users.values())

    @property
    def users_online(self) -> int:
        return len(self._users)

    def add(self, subscriber: Subscriber) -> None:
        self._users.setdefault(subscriber.user_key, []).append(subscriber)
        self.metrics.connections.labels(subscriber.transport).inc()
        self.metrics.users_online.set(len(self._users))

    def remove(self, subscriber: Subscriber) -> None:
        subs = self._users.get(subscriber.user_key)
        if subs is None or subscriber not in subs:
            return
        subs.remove(subscriber)
        if not subs:
            del self._users[subscriber.user_key]
        self.metrics.connections.labels(subscriber.transport).dec()
        self.metrics.users_online.set(len(self._users))

    def deliver(self, user_key: str, frame: Frame) -> None:
        for subscriber in self._users.get(user_key, ()):
            subscriber.offer(frame)

    def on_notice(self, payload: str) -> None:
        """A NOTIFY arrived (called synchronously by the listener, so it must not wait on anything)."""
        user_key = notice_user(payload)
        if user_key not in self._users:
            return  # the common case on a replica with many users: no JSON is even parsed
        if is_revocation(payload):
            self.close_user(user_key, CLOSE_FORBIDDEN, "account deactivated")
            return
        try:
            notice = decode_notice(payload)
        except ValueError:
            log.warning("malformed stream notice", extra={"payload": payload[:200]})
            return
        if notice.frame is not None:
            self.deliver(user_key, notice.frame)
            return
        # Too big for NOTIFY: read the row once for all local connections of that user.
        task = asyncio.get_running_loop().create_task(self._fetch(user_key, notice.offset))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _fetch(self, user_key: str, offset: int) -> None:
        try:
            frames = await self.store.read(uuid.UUID(user_key), after=offset - 1, upto=offset)
        except DATABASE_ERRORS:
            # The next frame for this user, or the next resync, fills the gap from the store.
            log.warning("could not read a stream entry", exc_info=True, extra={"offset": offset})
            return
        for frame in frames:
            self.deliver(user_key, frame)

    async def resync(self) -> None:
        """After LISTEN (re)connects: whatever was stored meanwhile reaches the live connections.

        Each user with a connection behind the stream's head gets the head frame; its connections then
        read what they miss before it (``Subscriber.resolve``), so a long outage cannot overflow them.
        """
        behind: dict[str, int] = {}
        for user_key, subs in self._users.items():
            live = [s.last_offset for s in subs if s.live and not s.closing]
            if live:
                behind[user_key] = min(live)
        if not behind:
            return
        self.metrics.resyncs.inc()
        try:
            heads = await self.store.latest_many([uuid.UUID(key) for key in behind])
        except DATABASE_ERRORS:
            log.warning("resync failed; the next entry of each user fills its gap", exc_info=True)
            return
        for user_key, head in heads.items():
            if head > behind[user_key]:
                await self._fetch(user_key, head)

    def close_user(self, user_key: str, code: int, reason: str) -> None:
        """Ask every connection of one user on this replica to end with ``code``."""
        for subscriber in list(self._users.get(user_key, ())):
            subscriber.close(code, reason)

    def everyone(self) -> Iterator[Subscriber]:
        """Every connection of this replica, WebSocket and SSE (broadcasts go to all of them)."""
        for subs in list(self._users.values()):
            yield from subs

    def close_all(self, code: int, reason: str, *, transport: str | None = None) -> None:
        """Ask every connection (of ``transport``, if given) to end with ``code``."""
        for subs in list(self._users.values()):
            for subscriber in list(subs):
                if transport is None or subscriber.transport == transport:
                    subscriber.close(code, reason)

    async def close(self) -> None:
        for task in list(self._fetches):
            task.cancel()
        if self._fetches:
            await asyncio.gather(*self._fetches, return_exceptions=True)
