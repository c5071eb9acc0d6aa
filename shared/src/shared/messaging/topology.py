"""A consuming service's queues on the broker, and their declaration.

Per service (``<service>`` below):

- ``<service>.events``: durable quorum queue bound to ``events`` for the types the service handles;
- ``<service>.retry.<n>``: delay queues, one per attempt level, whose TTL dead-letters a message back
  to ``<service>.events`` (so a retry survives restarts and does not block the main queue);
- ``<service>.dlq``: where a message lands after the last attempt, or at once when it cannot be parsed,
  with the error in its headers; ``python -m shared.messaging.dlq`` lists, inspects and redrives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel

from shared.messaging.events import EXCHANGE


@dataclass(frozen=True)
class Topology:
    service: str
    event_types: Sequence[str]
    retry_delays: Sequence[float] = (1.0, 5.0, 30.0, 120.0)

    @property
    def queue(self) -> str:
        return f"{self.service}.events"

    @property
    def dlq(self) -> str:
        return f"{self.service}.dlq"

    def retry_queue(self, level: int) -> str:
        return f"{self.service}.retry.{level}"

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1


async def declare_topology(channel: AbstractChannel, topology: Topology) -> aio_pika.abc.AbstractQueue:
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(topology.queue, durable=True, arguments={"x-queue-type": "quorum"})
    for event_type in topology.event_types:
        await queue.bind(exchange, event_type)
    for level, delay in enumerate(topology.retry_delays, start=1):
        await channel.declare_queue(
            topology.retry_queue(level),
            durable=True,
            arguments={
                "x-message-ttl": int(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": topology.queue,
            },
        )
    await channel.declare_queue(topology.dlq, durable=True, arguments={"x-queue-type": "quorum"})
    return queue
