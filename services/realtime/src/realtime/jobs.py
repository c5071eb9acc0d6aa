"""The realtime service's scheduled jobs (contract section 8), run by shared.jobs on every replica:
``trim-streams`` (user streams) and ``trim-rooms`` (room histories, contract section 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from realtime.rooms.store import trim_rooms
from realtime.settings import SCHEMA, Settings
from realtime.streams.models import JOB_RUNS, JOBS
from realtime.streams.retention import RetentionPolicy, trim
from shared.db.engine import make_engine
from shared.jobs.clock import Clock
from shared.jobs.job import Job, JobContext
from shared.jobs.metrics import JobMetrics
from shared.jobs.scheduler import Scheduler

SERVICE = "realtime"


def trim_streams(engine: AsyncEngine, policy: RetentionPolicy) -> Job:
    """Each stream keeps its newest events for a bounded time and count; old inbox rows go too."""

    async def run(ctx: JobContext) -> str:
        result = await trim(engine, policy)
        if result.skipped:
            return "skipped: a `python -m realtime trim` was trimming at the same time"
        return f"deleted {result.by_count} by count, {result.by_age} by age, {result.inbox} inbox rows"

    return Job.define("trim-streams", "*/5 * * * *", run)


def trim_room_histories(engine: AsyncEngine, settings: Settings) -> Job:
    """Each room keeps its newest messages for a bounded time and count; big broadcasts' rows go."""

    async def run(ctx: JobContext) -> str:
        deleted = await trim_rooms(
            engine, max_age=settings.room_retention_max_age, max_messages=settings.room_retention_max_messages
        )
        return f"deleted {deleted} rows"

    return Job.define("trim-rooms", "*/5 * * * *", run)


def scheduler(
    settings: Settings, engine: AsyncEngine, metrics: JobMetrics | None = None, clock: Clock | None = None
) -> Scheduler:
    policy = RetentionPolicy(max_age=settings.retention_max_age, max_events=settings.retention_max_events)
    return Scheduler(
        service=SERVICE,
        engine=engine,
        jobs=[trim_streams(engine, policy), trim_room_histories(engine, settings)],
        jobs_table=JOBS,
        runs_table=JOB_RUNS,
        metrics=metrics,
        clock=clock,
    )


@asynccontextmanager
async def open_scheduler(settings: Settings) -> AsyncIterator[Scheduler]:
    """For ``python -m realtime jobs``: a scheduler of its own that runs nothing unless told to."""
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=2)
    try:
        yield scheduler(settings, engine)
    finally:
        await engine.dispose()
