"""The background work of a running service, for the app's supervisor: the event consumer, the
scheduled jobs and the outbox relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orders.database import INBOX, OUTBOX
from orders.order.handlers import on_user_deactivated, on_user_deleted
from orders.resources import Metrics, Resources
from orders.settings import SCHEMA, Settings
from shared.db.engine import make_engine
from shared.messaging.broker import BrokerLink
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox_metrics import OutboxMetrics
from shared.messaging.relay import OutboxRelay
from shared.messaging.relay_thread import OpenRelay, RelayThread
from shared.messaging.topology import Topology
from shared.service.supervisor import Worker, worker

TOPOLOGY = Topology("orders", ["user.deactivated", "user.deleted"])
# A batch being claimed, one being settled, the gauges and the purge.
RELAY_POOL_SIZE = 4


def relay_opener(settings: Settings, metrics: OutboxMetrics) -> OpenRelay:
    """The relay with an engine and a broker link of its own, made in (and for) the relay's thread."""

    @asynccontextmanager
    async def open_relay() -> AsyncIterator[OutboxRelay]:
        engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=RELAY_POOL_SIZE)
        link = BrokerLink(settings.amqp_url, name="orders-outbox")
        try:
            yield OutboxRelay(
                engine=engine,
                table=OUTBOX,
                link=link,
                listen_dsn=settings.service_database_url(),
                metrics=metrics,
            )
        finally:
            await link.close()
            await engine.dispose()

    return open_relay


def declare_workers(resources: Resources, metrics: Metrics) -> list[Worker]:
    """Stopped in this order: the consumer (its handlers may still write outbox rows), the jobs
    (expire-unpaid-orders writes some too), then the relay, which publishes what is left."""
    settings = resources.settings
    consumer = EventConsumer(
        amqp_url=settings.amqp_url,
        topology=TOPOLOGY,
        handlers={"user.deactivated": on_user_deactivated, "user.deleted": on_user_deleted},
        sessionmaker=resources.sessions,
        inbox=INBOX,
        metrics=metrics.consumer,
    )
    return [
        worker("event-consumer", consumer, readiness="broker", check=consumer.check),
        worker("jobs", resources.scheduler),
        # On a loop of its own (shared.messaging.relay_thread says why).
        worker(
            "outbox-relay", RelayThread(relay_opener(settings, metrics.outbox), name="orders-outbox-relay")
        ),
    ]
