"""Everything the lifespan builds, in one place, and the order it is torn down in."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notification.background import BackgroundLoops
from notification.contacts.directory import UsersDirectory
from notification.database import outbox
from notification.email.sender import EmailMetrics, EmailSender, RetryPolicy
from notification.email.smtp import SmtpTransport
from notification.events.consumer import build_consumer
from notification.events.handlers import EventHandlers
from notification.settings import SCHEMA, SERVICE, Settings
from shared.auth.verifier import JwksKeySource, TokenVerifier
from shared.db.engine import make_engine, make_sessionmaker, ping
from shared.messaging.broker import BrokerLink
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import OutboxMetrics, OutboxRelay
from shared.web.health import ReadinessCheck


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    consumer: EventConsumer
    sender: EmailSender

    def readiness(self) -> dict[str, ReadinessCheck]:
        return {"database": functools.partial(ping, self.engine), "broker": self.consumer.check}


def plain_dsn(url: str) -> str:
    """asyncpg's own connect (LISTEN connections) takes ``postgresql://``, not SQLAlchemy's dialect URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def open_resources(settings: Settings, registry: CollectorRegistry) -> AsyncIterator[Resources]:
    database_url = settings.service_database_url()
    engine = make_engine(database_url, schema=SCHEMA)
    http = httpx.AsyncClient(timeout=settings.users_timeout)
    link = BrokerLink(settings.amqp_url, name=f"{SERVICE}-outbox")
    loops = BackgroundLoops()
    try:
        sessions = make_sessionmaker(engine)
        verifier = TokenVerifier(
            JwksKeySource(settings.jwks_url, http), issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        directory = UsersDirectory(
            http, settings.users_url, settings.users_service_token.get_secret_value(), settings.users_timeout
        )
        handlers = EventHandlers(
            directory=directory,
            public_url=settings.public_url,
            email_order_statuses=settings.email_order_statuses,
        )
        consumer = build_consumer(settings, sessions, handlers, registry)
        relay = OutboxRelay(
            engine=engine,
            table=outbox,
            link=link,
            listen_dsn=plain_dsn(database_url),
            metrics=OutboxMetrics.create(registry),
        )
        sender = EmailSender(
            engine=engine,
            transport=SmtpTransport(settings),
            policy=RetryPolicy(
                max_attempts=settings.email_max_attempts,
                base=settings.email_backoff_base,
                cap=settings.email_backoff_max,
            ),
            listen_dsn=plain_dsn(database_url),
            metrics=EmailMetrics.create(registry),
            batch_size=settings.email_batch_size,
            poll_interval=settings.email_poll_interval,
            lease_seconds=settings.email_lease,
        )
        # Stopped in this order: the consumer first (its last handlers may still write outbox rows
        # and e-mails), then the sender, then the relay, which publishes what is left.
        loops.start("consumer", consumer.run, consumer.stop)
        loops.start("email-sender", sender.run, sender.stop)
        loops.start("outbox-relay", relay.run, relay.stop)
        yield Resources(
            settings=settings,
            engine=engine,
            sessions=sessions,
            verifier=verifier,
            consumer=consumer,
            sender=sender,
        )
    finally:
        await loops.shutdown()
        await link.close()
        await http.aclose()
        await engine.dispose()
