"""The background work of a replica: the event consumer, the LISTEN connection, the retention job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from realtime.delivery.listener import NotifyListener
from realtime.resources import Resources
from realtime.streams.ingest import build_consumer
from realtime.streams.retention import RetentionPolicy, Trimmer
from shared.messaging.consumer import EventConsumer

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Workers:
    consumer: EventConsumer
    listener: NotifyListener
    trimmer: Trimmer


async def supervise(name: str, run: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
    """Run a worker until it returns (it was stopped); restart it, with backoff, if it crashes.

    Each worker handles the errors it expects; anything else must not end delivery for good.
    """
    delay = 0.5
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("background worker crashed; restarting it", extra={"worker": name})
        if stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        delay = min(delay * 2, 30.0)


@asynccontextmanager
async def running_workers(resources: Resources) -> AsyncIterator[Workers]:
    settings = resources.settings
    hub = resources.runtime.hub
    workers = Workers(
        consumer=build_consumer(settings, resources.sessions, resources.metrics.consumer),
        listener=NotifyListener(
            settings.service_database_url(),
            on_notice=hub.on_notice,
            on_connect=hub.resync,
            metrics=resources.metrics.realtime,
        ),
        trimmer=Trimmer(
            resources.engine,
            RetentionPolicy(max_age=settings.retention_max_age, max_events=settings.retention_max_events),
            settings.trim_interval,
        ),
    )
    stopping = asyncio.Event()
    tasks = [
        asyncio.create_task(supervise(name, run, stopping), name=f"realtime-{name}")
        for name, run in (
            ("event-consumer", workers.consumer.run),
            ("listener", workers.listener.run),
            ("retention", workers.trimmer.run),
        )
    ]
    try:
        yield workers
    finally:
        stopping.set()
        workers.consumer.stop()
        workers.listener.stop()
        workers.trimmer.stop()
        _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
        await hub.close()
