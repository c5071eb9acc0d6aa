"""Everything the lifespan builds, in one place, and the order it is torn down in."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from realtime import jobs
from realtime.delivery.hub import Hub
from realtime.delivery.leases import ConnectionLeases
from realtime.metrics import RealtimeMetrics, TransportMetrics
from realtime.rooms.fanout import Announcer, BrokerFanout
from realtime.rooms.hub import RoomHub
from realtime.rooms.limits import Limits, SayBuckets
from realtime.rooms.presence import PresenceStore
from realtime.rooms.store import RoomStore
from realtime.runtime import Runtime
from realtime.settings import SCHEMA, Settings
from realtime.streams.store import StreamStore
from shared.auth.verifier import JwksKeySource, TokenVerifier
from shared.db.engine import make_engine, make_sessionmaker, ping
from shared.http import ServiceClient
from shared.jobs.metrics import JobMetrics
from shared.jobs.scheduler import Scheduler
from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.web.health import ReadinessCheck


@dataclass(frozen=True, slots=True)
class Metrics:
    """Registered once per app, so a second lifespan of the same app reuses them."""

    realtime: RealtimeMetrics
    consumer: ConsumerMetrics
    jobs: JobMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            realtime=RealtimeMetrics.create(registry),
            consumer=ConsumerMetrics.create(registry),
            jobs=JobMetrics.create(registry),
        )


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    metrics: Metrics
    runtime: Runtime
    # Run by the supervisor (realtime.workers); the admin jobs API steers it.
    scheduler: Scheduler

    @property
    def verifier(self) -> TokenVerifier:
        return self.runtime.verifier

    def readiness(self) -> dict[str, ReadinessCheck]:
        # "broker" and "listener" are the workers' (realtime.workers).
        return {"database": functools.partial(ping, self.engine)}


@asynccontextmanager
async def open_resources(settings: Settings, metrics: Metrics) -> AsyncIterator[Resources]:
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=settings.db_pool_size)
    try:
        async with ServiceClient(timeout=5.0) as http:
            # Tokens are verified here against the issuer's published keys, as every service does.
            verifier = TokenVerifier(
                JwksKeySource(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_token_ttl=settings.access_token_ttl.total_seconds(),
            )
            store = StreamStore(engine)
            hub = Hub(store, metrics.realtime)
            broker = BrokerFanout(settings.amqp_url) if settings.room_fanout == "broker" else None
            announcer = Announcer(engine, broker)
            presence = PresenceStore(engine, announcer, ttl=settings.presence_ttl)
            rooms = RoomHub(
                RoomStore(engine, announcer), presence, hub, recovery_limit=settings.recovery_limit
            )
            if broker is not None:
                broker.on_notice, broker.on_connect = rooms.on_notice, rooms.resync
            scale = settings.rate_limit_scale
            limits = Limits(
                max_rooms=settings.max_rooms_per_connection,
                say_rate=settings.say_rate * scale,
                say_burst=settings.say_burst * scale,
            )
            yield Resources(
                settings=settings,
                engine=engine,
                sessions=make_sessionmaker(engine),
                metrics=metrics,
                runtime=Runtime(
                    settings=settings,
                    verifier=verifier,
                    store=store,
                    hub=hub,
                    leases=ConnectionLeases(
                        engine, limit=settings.max_connections_per_user, ttl=settings.connection_lease_ttl
                    ),
                    ws_metrics=TransportMetrics.bind(metrics.realtime, "ws"),
                    sse_metrics=TransportMetrics.bind(metrics.realtime, "sse"),
                    rooms=rooms,
                    room_limits=limits,
                    say_buckets=SayBuckets(limits),
                ),
                scheduler=jobs.scheduler(settings, engine, metrics.jobs),
            )
            # After the workers (the supervisor stops them before this runs).
            await rooms.close()
            await hub.close()
    finally:
        await engine.dispose()
