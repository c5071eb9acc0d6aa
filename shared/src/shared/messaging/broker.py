"""One AMQP link per process role for publishing, reconnected by us rather than by a robust client.

aio-pika's robust connection restores channels in the background but never replays a publish that
failed while it was down (mosquito/aio-pika #231, #508, #636), and its restore can leave a stale
channel behind. The outbox needs the opposite: a publish either gets a broker confirm or raises, and
the next attempt starts from a fresh connection. So this link connects plainly, and on any failure
drops the connection; the caller retries with backoff and the next call reconnects.

It speaks aiormq (the protocol layer aio-pika is built on) directly, for throughput under load:

- aio-pika's ``Exchange.publish`` calls aiormq's ``basic_publish`` with ``wait=True``: under the
  channel lock it waits until the writer task has written and drained the frame, so concurrent
  publishes (a relay batch) went out one per event-loop turn or more;
- aiormq queues at most ``FRAME_BUFFER_SIZE`` (10) frames for its writer; a publisher that finds
  the queue full waits holding the channel lock, and the publishers behind it then get through
  one per loop turn. ``_Connection`` raises the bound, and ``wait=False`` drops the drain.

On the orders bench, with the event loop busy serving requests, a relay batch of ~35 events took
~240 ms at the median and ~0.9 s at p90 to be confirmed; with both changes ~100 ms and ~0.3 s
(the broker's own confirms, persistent messages, took 2-30 ms meanwhile). What is in flight stays
bounded by the caller (the relay's batch size).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq

from shared.messaging.events import EXCHANGE

log = logging.getLogger(__name__)

BROKER_ERRORS: tuple[type[BaseException], ...] = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)

PERSISTENT = 2  # AMQP delivery mode

# Seconds to wait between the last ack and closing the channel. A quorum queue may ignore acks that
# arrive just before their channel closes (rabbitmq/rabbitmq-server#10327, open; RabbitMQ 3.10 here):
# those deliveries come back although they were handled. Acking 100 deliveries and closing at once
# left some in the queue in 7 of 20 rounds; with this pause, in none of 20.
ACK_SETTLE_GRACE = 0.5


class PublishRejected(Exception):
    """The broker nacked the message or returned it as unroutable."""


class _Connection(aiormq.Connection):
    # Frames queued for the writer before a publisher waits (see the module's docstring): a whole
    # relay batch (200) fits, so it is queued in one event-loop turn.
    FRAME_BUFFER_SIZE = 1024


class BrokerLink:
    def __init__(self, url: str, *, name: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.name = name
        self.connect_timeout = connect_timeout
        self._connection: aiormq.Connection | None = None
        self._channel: aiormq.Channel | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def exchange(self) -> aiormq.Channel:
        """The publishing channel, connected (and ``EXCHANGE`` declared) if it was not."""
        if self.connected and self._channel is not None:
            return self._channel
        async with self._lock:
            if self.connected and self._channel is not None:
                return self._channel
            await self._drop()
            connection = _Connection(self.url, client_properties={"connection_name": self.name})
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await connection.connect()
                    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                    assert isinstance(channel, aiormq.Channel)  # declared as its abstract class
                    await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
            except BaseException:
                await connection.close()
                raise
            self._connection, self._channel = connection, channel
            log.info("broker link up", extra={"link": self.name})
            return channel

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        event_type: str,
        headers: Mapping[str, Any],
        timeout: float = 10.0,
        channel: aiormq.Channel | None = None,
    ) -> None:
        """Publish persistently with ``mandatory``; return only once the broker confirmed.

        On ``channel`` (from ``exchange()``) when given, which it never replaces: publishes that
        must reach the broker in order share one, so that once it fails every later one fails too.
        Each reconnecting on its own, a broker back in the middle of a batch got its later rows
        ahead of the one that had failed.
        """
        if channel is None:
            channel = await self.exchange()
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=message_id,
            message_type=event_type,
            headers=dict(headers),
        )
        try:
            # wait=False: queued in call order without waiting for the writer (module docstring).
            await channel.basic_publish(
                body,
                exchange=EXCHANGE,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                timeout=timeout,
                wait=False,
            )
        except (aiormq.exceptions.DeliveryError, aiormq.exceptions.PublishError) as exc:
            raise PublishRejected(f"{routing_key} {message_id}: {exc}") from exc
        except BROKER_ERRORS:
            await self._discard(channel)
            raise

    async def reset(self) -> None:
        async with self._lock:
            await self._drop()

    async def _discard(self, channel: aiormq.Channel) -> None:
        """Drop the connection ``channel`` belongs to, unless the link has moved on from it."""
        async with self._lock:
            if self._channel is channel:
                await self._drop()

    async def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            try:
                await asyncio.wait_for(connection.close(), 2.0)
            except BROKER_ERRORS as exc:
                log.debug("closing a broken broker link failed", extra={"error": str(exc)})

    async def close(self) -> None:
        await self.reset()
