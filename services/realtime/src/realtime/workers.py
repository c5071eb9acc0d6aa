"""The background work of a replica, for the app's supervisor: the event consumer, the LISTEN
connection, the scheduled jobs (trim-streams)."""

from __future__ import annotations

from realtime.delivery.listener import NotifyListener
from realtime.resources import Metrics, Resources
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
    return [
        worker("event-consumer", consumer, readiness="broker", check=consumer.check),
        worker("listener", listener, readiness="listener", check=listener.check),
        # Renews this replica's connection leases and deletes released ones (the per-user cap).
        worker("stream-leases", resources.runtime.leases),
        worker("jobs", resources.scheduler),
    ]
