"""The orders service's scheduled jobs (contract section 8), run by shared.jobs on every replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orders.database import JOB_RUNS, JOBS, OUTBOX
from orders.idempotency.models import IdempotencyKey
from orders.order import service
from orders.settings import SCHEMA, Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.unit_of_work import unit_of_work
from shared.jobs.clock import Clock
from shared.jobs.job import Job, JobContext
from shared.jobs.metrics import JobMetrics
from shared.jobs.purge import purge_job, purge_outbox_job
from shared.jobs.scheduler import Scheduler

SERVICE = "orders"
# Orders cancelled per transaction: each batch's row locks (and its events) are held only that long.
EXPIRE_BATCH = 200


def expire_unpaid_orders(sessions: async_sessionmaker[AsyncSession], ttl: timedelta) -> Job:
    """``pending`` orders older than ``ORDERS_UNPAID_TTL`` become ``cancelled`` (reason ``expired``),
    their ``order.status_changed`` written to the outbox in the same transaction."""

    async def run(ctx: JobContext) -> str:
        cutoff = ctx.started_at - ttl
        total = 0
        while True:
            async with unit_of_work(sessions) as uow:
                cancelled = await service.expire_unpaid(uow.session, cutoff, EXPIRE_BATCH)
            total += cancelled
            if cancelled < EXPIRE_BATCH:
                return f"cancelled {total} unpaid orders"

    return Job.define("expire-unpaid-orders", "*/5 * * * *", run)


def jobs(settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> list[Job]:
    keys = cast(Table, IdempotencyKey.__table__)
    retention = settings.idempotency_retention
    return [
        expire_unpaid_orders(sessions, settings.unpaid_ttl),
        purge_job(
            "purge-idempotency-keys",
            "7 * * * *",
            engine,
            keys,
            lambda now: keys.c.created_at < now - retention,
        ),
        purge_outbox_job(engine, OUTBOX),
    ]


def scheduler(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    metrics: JobMetrics | None = None,
    clock: Clock | None = None,
) -> Scheduler:
    return Scheduler(
        service=SERVICE,
        engine=engine,
        jobs=jobs(settings, engine, sessions),
        jobs_table=JOBS,
        runs_table=JOB_RUNS,
        metrics=metrics,
        clock=clock,
    )


@asynccontextmanager
async def open_scheduler(settings: Settings) -> AsyncIterator[Scheduler]:
    """For ``python -m orders jobs``: a scheduler of its own that runs nothing unless told to."""
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=2)
    try:
        yield scheduler(settings, engine, make_sessionmaker(engine))
    finally:
        await engine.dispose()
