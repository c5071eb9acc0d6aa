"""Everything the lifespan builds, in one place, and the order it is torn down in."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notification import jobs
from notification.database import inbox
from notification.email.sender import EmailMetrics, EmailSender, RetryPolicy
from notification.email.smtp import SmtpTransport
from notification.notifications.handlers import EventHandlers
from notification.settings import SCHEMA, SERVICE, Settings
from shared.auth.verifier import JwksKeySource, TokenVerifier
from shared.db.engine import make_engine, make_sessionmaker, ping
from shared.http import ServiceClient
from shared.jobs.metrics import JobMetrics
from shared.jobs.scheduler import Scheduler
from shared.messaging.broker import BrokerLink
from shared.messaging.consumer import EventConsumer
from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.messaging.outbox_metrics import OutboxMetrics
from shared.messaging.topology import Topology
from shared.web.health import ReadinessCheck


@dataclass(frozen=True, slots=True)
class Metrics:
    """Registered once per app, so a second lifespan of the same app reuses them."""

    outbox: OutboxMetrics
    consumer: ConsumerMetrics
    email: EmailMetrics
    jobs: JobMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            outbox=OutboxMetrics.create(registry),
            consumer=ConsumerMetrics.create(registry),
            email=EmailMetrics.create(registry),
            jobs=JobMetrics.create(registry),
        )


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    link: BrokerLink
    # Built here (they hold the handlers, the SMTP transport, the users directory);
    # notification.workers runs them.
    consumer: EventConsumer
    sender: EmailSender
    scheduler: Scheduler

    def readiness(self) -> dict[str, ReadinessCheck]:
        # "broker" is the consumer's (notification.workers).
        return {"database": functools.partial(ping, self.engine)}


@asynccontextmanager
async def open_resources(settings: Settings, metrics: Metrics) -> AsyncIterator[Resources]:
    database_url = settings.service_database_url()
    engine = make_engine(database_url, schema=SCHEMA, pool_size=settings.db_pool_size)
    http = ServiceClient(timeout=settings.users_timeout)
    link = BrokerLink(settings.amqp_url, name=f"{SERVICE}-outbox")
    try:
        sessions = make_sessionmaker(engine)
        verifier = TokenVerifier(
            JwksKeySource(settings.jwks_url, http),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_token_ttl=settings.access_token_ttl.total_seconds(),
        )
        directory = jobs.directory_of(settings, http)
        handlers = EventHandlers(
            sessions=sessions,
            directory=directory,
            public_url=settings.public_url,
            email_order_statuses=settings.email_order_statuses,
        )
        mapping = handlers.mapping()
        consumer = EventConsumer(
            amqp_url=settings.amqp_url,
            # Queue notification.events, delay queues notification.retry.<n>, DLQ notification.dlq.
            topology=Topology(SERVICE, sorted(mapping), retry_delays=tuple(settings.retry_delays)),
            handlers=mapping,
            sessionmaker=sessions,
            inbox=inbox,
            metrics=metrics.consumer,
            prefetch=settings.consumer_prefetch,
            prepare=handlers.prepare,
        )
        sender = EmailSender(
            engine=engine,
            transport=SmtpTransport(settings),
            policy=RetryPolicy(
                max_attempts=settings.email_max_attempts,
                base=settings.email_backoff_base,
                cap=settings.email_backoff_max,
            ),
            listen_dsn=database_url,
            metrics=metrics.email,
            batch_size=settings.email_batch_size,
            poll_interval=settings.email_poll_interval,
            lease_seconds=settings.email_lease,
        )
        yield Resources(
            settings=settings,
            engine=engine,
            sessions=sessions,
            verifier=verifier,
            link=link,
            consumer=consumer,
            sender=sender,
            scheduler=jobs.scheduler(engine, sessions, directory, metrics.jobs),
        )
    finally:
        await link.close()
        await http.aclose()
        await engine.dispose()
