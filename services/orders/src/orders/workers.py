"""The background work of a running service: the outbox relay, the event consumer, the key purge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from orders.database import INBOX, OUTBOX
from orders.idempotency.purge import KeyPurger
from orders.order.handlers import on_user_deactivated
from orders.resources import Metrics, Resources
from orders.settings import SCHEMA, Settings
from shared.db.engine import make_engine
from shared.messaging.broker import BrokerLink
from shared.messaging.consumer import EventConsumer, Topology
from shared.messaging.outbox import OutboxMetrics, OutboxRelay
from shared.messaging.relay_thread import OpenRelay, RelayThread

log = logging.getLogger(__name__)

TOPOLOGY = Topology("orders", ["user.deactivated"])
STOP_TIMEOUT = 15.0
# A batch being claimed, one being settled, the gauges and the purge.
RELAY_POOL_SIZE = 4


@dataclass(frozen=True, slots=True)
class Workers:
    relay: RelayThread
    consumer: EventConsumer
    purger: KeyPurger


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


@asynccontextmanager
async def running_workers(resources: Resources, metrics: Metrics) -> AsyncIterator[Workers]:
    settings = resources.settings
    workers = Workers(
        # On a loop of its own (shared.messaging.relay_thread says why).
        relay=RelayThread(relay_opener(settings, metrics.outbox), name="orders-outbox-relay"),
        consumer=EventConsumer(
            amqp_url=settings.amqp_url,
            topology=TOPOLOGY,
            handlers={"user.deactivated": on_user_deactivated},
            sessionmaker=resources.sessions,
            inbox=INBOX,
            metrics=metrics.consumer,
        ),
        purger=KeyPurger(
            resources.sessions, retention=settings.idempotency_retention, interval=settings.purge_interval
        ),
    )
    # Each one survives the errors it meets (it logs them and tries again) until it is stopped.
    workers.relay.start()
    tasks = [
        asyncio.create_task(workers.consumer.run(), name="orders-event-consumer"),
        asyncio.create_task(workers.purger.run(), name="orders-key-purge"),
    ]
    try:
        yield workers
    finally:
        workers.consumer.stop()
        workers.purger.stop()
        # Each finishes what it holds (a relay batch, in-flight messages) and returns; one stuck on a
        # dead link is cancelled rather than holding the shutdown (its rows stay in the outbox).
        relay_stopped = asyncio.create_task(workers.relay.stop(STOP_TIMEOUT))
        _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        for task in stuck:
            log.warning("background task did not stop in time", extra={"task": task.get_name()})
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        if not await relay_stopped:
            # A daemon thread: it ends with the process; its rows stay in the outbox for the next relay.
            log.warning("background task did not stop in time", extra={"task": "orders-outbox-relay"})
