"""Everything the lifespan builds, in one place, and the order it is torn down in."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth.verifier import StaticKeySource, TokenVerifier
from shared.db.engine import make_engine, make_sessionmaker, ping
from shared.jobs.metrics import JobMetrics
from shared.jobs.scheduler import Scheduler
from shared.messaging.broker import BrokerLink
from shared.messaging.outbox_metrics import OutboxMetrics
from shared.web.client_address import TrustedProxies
from shared.web.health import ReadinessCheck
from shared.web.ratelimit import TokenBuckets
from users import jobs
from users.accounts.admin import ensure_admin
from users.accounts.passwords import Passwords
from users.settings import SCHEMA, Settings
from users.throttling.service import LoginThrottle, ThrottlePolicy
from users.tokens.access import AccessTokenIssuer
from users.tokens.keys import KeySet, load_key_set
from users.tokens.service import TokenService


@dataclass(frozen=True, slots=True)
class Metrics:
    """Registered once per app, so a second lifespan of the same app reuses them."""

    outbox: OutboxMetrics
    jobs: JobMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(outbox=OutboxMetrics.create(registry), jobs=JobMetrics.create(registry))


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    # The same pool, its connections in autocommit: single reads without BEGIN/COMMIT round trips.
    reads: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keys: KeySet
    passwords: Passwords
    throttle: LoginThrottle
    tokens: TokenService
    verifier: TokenVerifier
    trusted_proxies: TrustedProxies
    registrations: TokenBuckets
    broker: BrokerLink
    # Run by the supervisor (users.workers); the admin jobs API steers it.
    scheduler: Scheduler

    def readiness(self) -> dict[str, ReadinessCheck]:
        return {"database": functools.partial(ping, self.engine), "broker": self.broker.exchange}


@asynccontextmanager
async def open_resources(settings: Settings, metrics: Metrics | None = None) -> AsyncIterator[Resources]:
    keys = load_key_set(settings)
    passwords = await Passwords.create(settings.argon2_profile, settings.hash_memory_budget_mib)
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=settings.db_pool_size)
    broker = BrokerLink(settings.amqp_url, name="users-outbox")
    try:
        sessions = make_sessionmaker(engine)
        throttle = LoginThrottle(
            sessions,
            ThrottlePolicy(
                max_per_account=settings.login_max_failures_per_account,
                account_window=settings.login_account_window,
                max_per_ip=settings.login_max_failures_per_ip,
                ip_window=settings.login_ip_window,
            ),
        )
        issuer = AccessTokenIssuer(
            keys.signing,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=settings.access_token_ttl,
        )
        resources = Resources(
            settings=settings,
            engine=engine,
            reads=engine.execution_options(isolation_level="AUTOCOMMIT"),
            sessions=sessions,
            keys=keys,
            passwords=passwords,
            throttle=throttle,
            tokens=TokenService(sessions, passwords, throttle, issuer, settings.refresh_token_ttl),
            # This service verifies its own tokens against its own JWKS, exactly as the others do.
            verifier=TokenVerifier(
                StaticKeySource(keys.jwks()),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_token_ttl=settings.access_token_ttl.total_seconds(),
            ),
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            registrations=TokenBuckets(
                settings.register_per_minute * settings.rate_limit_scale / 60,
                max(1, round(settings.register_burst * settings.rate_limit_scale)),
            ),
            broker=broker,
            scheduler=jobs.scheduler(settings, engine, metrics.jobs if metrics else None),
        )
        if settings.admin_email and settings.admin_password:
            await ensure_admin(
                sessions,
                passwords,
                settings.admin_email,
                settings.admin_password.get_secret_value(),
                promote_existing=settings.admin_promote_existing,
            )
        yield resources
    finally:
        passwords.close()
        await broker.close()
        await engine.dispose()
