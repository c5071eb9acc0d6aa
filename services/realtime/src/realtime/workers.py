"""The background work of a replica, for the app's supervisor: the event consumer, the LISTEN
connections (user streams, rooms), the presence heartbeat, the scheduled jobs (trim-streams, trim-rooms)."""

from __future__ import annotations

from realtime.delivery.listener import NotifyListener
from realtime.resources import Metrics, Resources
from realtime.rooms.frames import ROOMS_CHANNEL
from realtime.rooms.heartbeat import PresenceHeartbeat
from realtime.streams.ingest import build_consumer
from shared.service.supervisor import Worker, worker


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
    return [
        worker("event-consumer", consumer, readiness="broker", check=consumer.check),
        worker("listener", listener, readiness="listener", check=listener.check),
        # Renews this replica's connection leases and deletes released ones (the per-user cap).
        worker("stream-leases", resources.runtime.leases),
        worker("jobs", resources.scheduler),
        room_notices,
        worker("presence", heartbeat, readiness="presence", check=rooms.presence.check),
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
