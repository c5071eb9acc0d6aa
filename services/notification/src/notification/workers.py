"""The background work of a running service, for the app's supervisor: the event consumer, the
scheduled jobs, the e-mail sender and the outbox relay."""

from __future__ import annotations

from notification.database import outbox
from notification.resources import Metrics, Resources
from shared.messaging.relay import OutboxRelay
from shared.service.supervisor import Worker, worker


def declare_workers(resources: Resources, metrics: Metrics) -> list[Worker]:
    """Stopped in this order: the consumer first (its last handlers may still write outbox rows and
    e-mails), the jobs (the daily report queues e-mails), then the sender, then the relay, which
    publishes what is left."""
    consumer = resources.consumer
    relay = OutboxRelay(
        engine=resources.engine,
        table=outbox,
        link=resources.link,
        listen_dsn=resources.settings.service_database_url(),
        metrics=metrics.outbox,
    )
    return [
        worker("event-consumer", consumer, readiness="broker", check=consumer.check),
        worker("jobs", resources.scheduler),
        worker("email-sender", resources.sender),
        worker("outbox-relay", relay),
    ]
