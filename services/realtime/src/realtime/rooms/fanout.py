"""How room notices reach every replica: a broker fan-out exchange (the default) or Postgres NOTIFY.

``REALTIME_ROOM_FANOUT=notify``: each notice is a ``pg_notify`` inside the storing transaction, so it
exists if and only if the row committed and arrives in commit order (offset order per room).

``REALTIME_ROOM_FANOUT=broker``: each notice is published after the commit to the fan-out exchange
``realtime.rooms``; every replica consumes it from its own exclusive, auto-deleted queue. Nothing is
published for a rolled-back transaction; two replicas' messages of one room may arrive out of order,
which the room hub's gap filling already handles (a notice past ``head + 1`` reads the gap from the
store, the late one is then dropped as already sent). README "Fan-out between replicas" has the
measurements behind the default.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from sqlalchemy import String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from realtime.rooms.frames import ROOMS_CHANNEL
from shared.messaging.broker import BROKER_ERRORS

log = logging.getLogger(__name__)

EXCHANGE = "realtime.rooms"

_NOTIFY = text("SELECT pg_notify(:channel, :payload)").bindparams(
    bindparam("channel", type_=String), bindparam("payload", type_=String)
)


class Notices(list[str]):
    """What a transaction announces; sent at its commit (NOTIFY) or after it (broker)."""


async def _nothing() -> None:
    return None


class BrokerFanout:
    """Publishes notices to ``realtime.rooms`` and feeds this replica's hub from its own queue."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.on_notice: Callable[[str], None] = lambda _: None
        self.on_connect: Callable[[], Awaitable[None]] = _nothing
        self._connection: AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._stopping = asyncio.Event()
        self.consuming = False

    async def publish(self, notices: list[str]) -> None:
        exchange = self._exchange
        if exchange is None:
            # Not connected yet: the members' next join or the resync after connecting catches up.
            log.warning("room fan-out not connected; notices dropped", extra={"count": len(notices)})
            return
        try:
            for payload in notices:
                await exchange.publish(aio_pika.Message(payload.encode()), routing_key="")
        except BROKER_ERRORS:
            # The messages are stored; members get them from history on their next join (with since).
            # Failing the frame instead would close the sender's connection over the broker's outage.
            log.warning("room fan-out failed; notices dropped", extra={"count": len(notices)}, exc_info=True)

    async def check(self) -> None:
        if not self.consuming:
            raise ConnectionError("not consuming room notices")

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        connection = await aio_pika.connect_robust(self.url, timeout=10)
        self._connection = connection
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(exchange)
            await queue.consume(self._deliver, no_ack=True)
            self._exchange = exchange
            self.consuming = True
            await self.on_connect()
            await self._stopping.wait()
        finally:
            self.consuming = False
            self._exchange = None
            await connection.close()

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        self.on_notice(message.body.decode())


class Announcer:
    """The one way the rooms' stores open a transaction that announces something to every replica."""

    def __init__(self, engine: AsyncEngine, broker: BrokerFanout | None = None) -> None:
        self.engine = engine
        self.broker = broker

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncConnection, Notices]]:
        notices = Notices()
        async with self.engine.begin() as conn:
            yield conn, notices
            if self.broker is None:
                for payload in notices:
                    await conn.execute(_NOTIFY, {"channel": ROOMS_CHANNEL, "payload": payload})
        if self.broker is not None and notices:
            await self.broker.publish(notices)
