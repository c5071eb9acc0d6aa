"""Everything the lifespan builds, in one place, and the order it is torn down in."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orders import jobs
from orders.order.gate import TransitionGate
from orders.settings import SCHEMA, Settings
from orders.upstream.breaker import CircuitBreaker, breaker_gauge
from orders.upstream.users import UsersClient, UsersRetries
from shared.auth.verifier import JwksKeySource, TokenVerifier
from shared.db.engine import make_engine, make_sessionmaker, ping
from shared.http import PoolTransport, ServiceClient, UpstreamPool
from shared.jobs.metrics import JobMetrics
from shared.jobs.scheduler import Scheduler
from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.messaging.outbox_metrics import OutboxMetrics
from shared.web.health import ReadinessCheck


@dataclass(frozen=True, slots=True)
class Metrics:
    """Registered once per app, so a second lifespan of the same app reuses them."""

    breaker_state: Gauge
    outbox: OutboxMetrics
    consumer: ConsumerMetrics
    jobs: JobMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            breaker_state=breaker_gauge(registry),
            outbox=OutboxMetrics.create(registry),
            consumer=ConsumerMetrics.create(registry),
            jobs=JobMetrics.create(registry),
        )


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # The same pool in autocommit: a write that is one statement needs no BEGIN/COMMIT round trips.
    single_statements: AsyncEngine
    http: httpx.AsyncClient
    users: UsersClient
    verifier: TokenVerifier
    gate: TransitionGate
    # Run by the supervisor (orders.workers); the admin jobs API steers it.
    scheduler: Scheduler

    def readiness(self) -> dict[str, ReadinessCheck]:
        # "broker" is the consumer's (orders.workers). Not users: while it is down, creating an order
        # answers 503 with Retry-After and everything else is served, so orders stays in rotation
        # (contract section 3).
        return {"database": functools.partial(ping, self.engine)}


@asynccontextmanager
async def open_resources(settings: Settings, metrics: Metrics) -> AsyncIterator[Resources]:
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=settings.db_pool_size)
    # The account check, once per order, on the hot-path transport; each call sets its own timeout.
    users_http = ServiceClient(
        base_url=settings.users_base_url,
        transport=PoolTransport(
            UpstreamPool(settings.users_base_url, connect_timeout=settings.users_timeout)
        ),
    )
    try:
        # The cold paths (the JWKS every token check depends on, readiness) on httpx.
        async with ServiceClient(timeout=settings.users_timeout) as http:
            breaker = CircuitBreaker(
                "users",
                failure_threshold=settings.breaker_failure_threshold,
                reset_timeout=settings.breaker_reset_timeout,
                gauge=metrics.breaker_state,
            )
            users = UsersClient(
                users_http,
                service_token=settings.users_service_token.get_secret_value(),
                breaker=breaker,
                timeout=settings.users_timeout,
                retry=UsersRetries(retries=settings.users_retries, backoff=settings.users_retry_backoff),
            )
            # Every access token is verified here again, against the issuer's published keys.
            verifier = TokenVerifier(
                JwksKeySource(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_token_ttl=settings.access_token_ttl.total_seconds(),
            )
            sessions = make_sessionmaker(engine)
            yield Resources(
                settings=settings,
                engine=engine,
                sessions=sessions,
                single_statements=engine.execution_options(isolation_level="AUTOCOMMIT"),
                http=http,
                users=users,
                verifier=verifier,
                gate=TransitionGate(),
                scheduler=jobs.scheduler(settings, engine, sessions, metrics.jobs),
            )
    finally:
        await users_http.aclose()
        await engine.dispose()
