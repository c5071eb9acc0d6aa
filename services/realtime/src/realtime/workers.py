"""The background work of a replica, for the app's supervisor: the event consumer, the LISTEN
connections (user streams, rooms), the retention jobs, the presence heartbeat."""

from __future__ import annotations

import functools

from realtime.delivery.listener import NotifyListener
from realtime.resources import Metrics, Resources
from realtime.rooms.frames import ROOMS_CHANNEL
from realtime.rooms.heartbeat import PresenceHeartbeat
from realtime.rooms.store import trim_rooms
from realtime.streams.ingest import build_consumer
from realtime.streams.retention import RetentionPolicy, trim_and_log
from shared.service.supervisor import Worker, periodic, worker


def declare_workers(resources: Resources, metrics: Metrics) -> list[Worker]:
    settings = resources.settings
    hub = resources.runtime.hub
    consumer = build_consumer(settings, resources.sessions, metrics.consumer)
    listener = NotifyListener(
        settings.service_database_url(),
        on_notice=hub.on_notice,
        on_connect=hub.resync,
        metrics=metrics.realtime,
    )
    rooms = resources.runtime.rooms
    broker = rooms.store.announcer.broker
    room_notices = (
        worker("room-fanout", broker, readiness="room_listener", check=broker.check)
        if broker is not None
        else _room_listener(resources)
    )
    heartbeat = PresenceHeartbeat(rooms, resources.runtime.say_buckets, interval=settings.presence_heartbeat)
    policy = RetentionPolicy(max_age=settings.retention_max_age, max_events=settings.retention_max_events)
    return [
        worker("event-consumer", consumer, readiness="broker", check=consumer.check),
        worker("listener", listener, readiness="listener", check=listener.check),
        # The first round at start, as before: a replica that restarts often still trims.
        periodic(
            "retention",
            settings.trim_interval,
            functools.partial(trim_and_log, resources.engine, policy),
            first_after=0,
        ),
        room_notices,
        worker("presence", heartbeat, readiness="presence", check=rooms.presence.check),
        periodic(
            "room-retention",
            settings.trim_interval,
            functools.partial(
                trim_rooms,
                resources.engine,
                max_age=settings.room_retention_max_age,
                max_messages=settings.room_retention_max_messages,
            ),
            first_after=0,
        ),
    ]


def _room_listener(resources: Resources) -> Worker:
    rooms = resources.runtime.rooms
    listener = NotifyListener(
        resources.settings.service_database_url(),
        on_notice=rooms.on_notice,
        on_connect=rooms.resync,
        metrics=None,
        channel=ROOMS_CHANNEL,
    )
    return worker("room-listener", listener, readiness="room_listener", check=listener.check)
