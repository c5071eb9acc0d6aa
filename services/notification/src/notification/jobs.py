"""The notification service's scheduled jobs (contract section 8), run by shared.jobs on every replica."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notification.contacts.directory import UsersDirectory
from notification.database import inbox, job_runs, jobs, outbox
from notification.email.models import PENDING, Email
from notification.email.outbound import enqueue
from notification.report import counts
from notification.report.email import daily_report
from notification.settings import SCHEMA, SERVICE, Settings
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.unit_of_work import unit_of_work
from shared.errors import UpstreamUnavailable
from shared.http import ServiceClient
from shared.jobs.clock import Clock
from shared.jobs.job import Job, JobContext, JobFailed
from shared.jobs.metrics import JobMetrics
from shared.jobs.purge import purge_inbox_job, purge_job, purge_outbox_job
from shared.jobs.scheduler import Scheduler

# Sent and failed e-mails (and their attempts) are kept this long for support to look at.
EMAIL_RETENTION = timedelta(days=30)
# Names each report e-mail: a second run for the same day queues nothing twice (emails.source_event_id).
REPORT_NAMESPACE = uuid.UUID("6f1b8f8e-3c55-4c43-9d55-7d0a4a0f2c11")


def report_id(day: date, admin_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(REPORT_NAMESPACE, f"daily-report/{day.isoformat()}/{admin_id}")


def daily_report_job(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], directory: UsersDirectory
) -> Job:
    """Each active admin gets an e-mail with the previous UTC day's figures."""

    async def run(ctx: JobContext) -> str:
        day = ctx.started_at.astimezone(UTC).date() - timedelta(days=1)
        figures = await counts.figures(engine, day)
        try:
            admins = await directory.admins()
        except UpstreamUnavailable as exc:
            raise JobFailed(f"the users service could not name the admins: {exc.detail}") from exc
        queued = 0
        async with unit_of_work(sessions) as uow:
            for admin in admins:
                queued += await enqueue(
                    uow.session,
                    source_event_id=report_id(day, admin.user_id),
                    user_id=admin.user_id,
                    recipient=admin.email,
                    rendered=daily_report(figures, full_name=admin.full_name),
                )
        return f"report of {day.isoformat()}: {queued} e-mails queued for {len(admins)} admins"

    return Job.define("daily-report", "0 8 * * *", run)


def all_jobs(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], directory: UsersDirectory
) -> list[Job]:
    emails = Email.__table__
    return [
        daily_report_job(engine, sessions, directory),
        purge_inbox_job(engine, inbox, "41 3 * * *"),
        purge_job(
            "purge-emails",
            "47 3 * * *",
            engine,
            emails,  # type: ignore[arg-type]
            lambda now: (emails.c.status != PENDING) & (emails.c.created_at < now - EMAIL_RETENTION),
        ),
        purge_outbox_job(engine, outbox),
    ]


def scheduler(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    directory: UsersDirectory,
    metrics: JobMetrics | None = None,
    clock: Clock | None = None,
) -> Scheduler:
    return Scheduler(
        service=SERVICE,
        engine=engine,
        jobs=all_jobs(engine, sessions, directory),
        jobs_table=jobs,
        runs_table=job_runs,
        metrics=metrics,
        clock=clock,
    )


def directory_of(settings: Settings, http: httpx.AsyncClient) -> UsersDirectory:
    return UsersDirectory(
        http, settings.users_url, settings.users_service_token.get_secret_value(), settings.users_timeout
    )


@asynccontextmanager
async def open_scheduler(settings: Settings) -> AsyncIterator[Scheduler]:
    """For ``python -m notification jobs``: a scheduler of its own that runs nothing unless told to."""
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=2)
    try:
        async with ServiceClient(timeout=settings.users_timeout) as http:
            yield scheduler(engine, make_sessionmaker(engine), directory_of(settings, http))
    finally:
        await engine.dispose()
