"""What becomes of a delivery its handler failed on: a delay queue for the next attempt, or the DLQ.

A copy goes to the target queue with publisher confirms, then the original is acked: nothing is
lost in between (at worst the copy and the original both exist, and the inbox skips the second).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.messaging.topology import Topology

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-attempt"
ERROR_HEADER = "x-last-error"


def attempt_of(message: AbstractIncomingMessage) -> int:
    """Which attempt this delivery is (1 for the first)."""
    value = (message.headers or {}).get(ATTEMPT_HEADER, 1)
    return value if isinstance(value, int) and value >= 1 else 1


class Redelivery:
    def __init__(self, topology: Topology, metrics: ConsumerMetrics) -> None:
        self.topology = topology
        self.metrics = metrics

    async def retry_or_dead_letter(
        self, channel: AbstractChannel | None, message: AbstractIncomingMessage, exc: Exception
    ) -> None:
        attempt = attempt_of(message)
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if attempt >= self.topology.max_attempts:
            await self.dead_letter(channel, message, error, reason="exhausted")
            return
        await self._republish(channel, message, self.topology.retry_queue(attempt), attempt + 1, error)
        self.metrics.retried.labels(self.topology.service).inc()

    async def dead_letter(
        self, channel: AbstractChannel | None, message: AbstractIncomingMessage, error: str, *, reason: str
    ) -> None:
        log.error("event dead-lettered", extra={"message_id": message.message_id, "reason": reason})
        await self._republish(channel, message, self.topology.dlq, attempt_of(message), error, dead=True)
        self.metrics.dead_lettered.labels(self.topology.service, reason).inc()

    async def _republish(
        self,
        channel: AbstractChannel | None,
        message: AbstractIncomingMessage,
        queue: str,
        attempt: int,
        error: str,
        *,
        dead: bool = False,
    ) -> None:
        """Copy the message to ``queue`` (confirmed), then ack the original."""
        if channel is None:
            raise ConnectionError("no channel to republish on")
        headers: dict[str, Any] = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempt
        headers[ERROR_HEADER] = error
        headers.setdefault("x-original-routing-key", message.routing_key or "")
        if dead:
            headers["x-dead-lettered-at"] = datetime.now(UTC).isoformat()
            headers["x-consumer"] = self.topology.service
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
        )
        await channel.default_exchange.publish(copy, routing_key=queue, mandatory=True)
        await message.ack()
