"""The background work of a running service, for the app's supervisor: the jobs and the outbox relay."""

from __future__ import annotations

from shared.messaging.relay import OutboxRelay
from shared.service.supervisor import Worker, worker
from users.outbox import OUTBOX
from users.resources import Metrics, Resources


def declare_workers(resources: Resources, metrics: Metrics) -> list[Worker]:
    relay = OutboxRelay(
        engine=resources.engine,
        table=OUTBOX,
        link=resources.broker,
        listen_dsn=resources.settings.service_database_url(),
        metrics=metrics.outbox,
    )
    return [worker("jobs", resources.scheduler), worker("outbox-relay", relay)]
