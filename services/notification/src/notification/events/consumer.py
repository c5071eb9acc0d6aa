"""The notification consumer: its queues on the broker, the handlers behind them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification.database import inbox
from notification.events.handlers import EventHandlers
from notification.settings import SERVICE, Settings
from shared.messaging.consumer import EventConsumer
from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.messaging.topology import Topology


def build_consumer(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    handlers: EventHandlers,
    metrics: ConsumerMetrics,
) -> EventConsumer:
    mapping = handlers.mapping()
    return EventConsumer(
        amqp_url=settings.amqp_url,
        # Queue notification.events, delay queues notification.retry.<n>, DLQ notification.dlq.
        topology=Topology(SERVICE, sorted(mapping), retry_delays=tuple(settings.retry_delays)),
        handlers=mapping,
        sessionmaker=sessions,
        inbox=inbox,
        metrics=metrics,
        prefetch=settings.consumer_prefetch,
        prepare=handlers.prepare,
    )
