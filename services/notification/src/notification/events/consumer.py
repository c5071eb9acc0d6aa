"""The notification consumer: its queues on the broker, the handlers behind them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification.database import inbox
from notification.events.handlers import EventHandlers
from notification.settings import SERVICE, Settings
from shared.messaging.consumer import ConsumerMetrics, EventConsumer, Topology


def build_consumer(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    handlers: EventHandlers,
    registry: CollectorRegistry,
) -> EventConsumer:
    mapping = handlers.mapping()
    return EventConsumer(
        amqp_url=settings.amqp_url,
        # Queue notification.events, delay queues notification.retry.<n>, DLQ notification.dlq.
        topology=Topology(SERVICE, sorted(mapping), retry_delays=tuple(settings.retry_delays)),
        handlers=mapping,
        sessionmaker=sessions,
        inbox=inbox,
        metrics=ConsumerMetrics.create(registry),
        prefetch=settings.consumer_prefetch,
    )
