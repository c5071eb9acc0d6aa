"""The users service's scheduled jobs (contract section 8), run by shared.jobs on every replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import make_engine
from shared.jobs.clock import Clock
from shared.jobs.job import Job
from shared.jobs.metrics import JobMetrics
from shared.jobs.purge import purge_job, purge_outbox_job
from shared.jobs.scheduler import Scheduler
from shared.jobs.tables import job_runs_table, jobs_table
from users.database import Base
from users.outbox import OUTBOX
from users.settings import SCHEMA, Settings
from users.throttling.models import LoginFailure
from users.tokens.models import RefreshToken
from users.verification.models import VerificationToken

SERVICE = "users"
JOBS = jobs_table(Base.metadata)
JOB_RUNS = job_runs_table(Base.metadata)
# A token expired or revoked this long ago can no longer tell a replay (family revocation) apart.
REFRESH_TOKEN_GRACE = timedelta(days=7)
# Past this, a used or expired verification or reset token matters to nothing: the reset limit counts
# the last hour's tokens, and a spent link answers the same 400 whether or not its row still exists.
VERIFICATION_TOKEN_GRACE = timedelta(days=1)


def all_jobs(settings: Settings, engine: AsyncEngine) -> list[Job]:
    tokens = cast(Table, RefreshToken.__table__)
    failures = cast(Table, LoginFailure.__table__)
    verification = cast(Table, VerificationToken.__table__)
    # A failure counts while it is inside the longest throttling window, and not after.
    window = max(settings.login_account_window, settings.login_ip_window)
    return [
        purge_job(
            "purge-refresh-tokens",
            "17 3 * * *",
            engine,
            tokens,
            lambda now: (
                (tokens.c.expires_at < now - REFRESH_TOKEN_GRACE)
                | (tokens.c.revoked_at < now - REFRESH_TOKEN_GRACE)
            ),
        ),
        purge_job(
            "purge-verification-tokens",
            "23 3 * * *",
            engine,
            verification,
            lambda now: (
                (verification.c.expires_at < now - VERIFICATION_TOKEN_GRACE)
                | (verification.c.used_at < now - VERIFICATION_TOKEN_GRACE)
            ),
        ),
        purge_job(
            "purge-login-failures",
            "*/15 * * * *",
            engine,
            failures,
            lambda now: failures.c.created_at < now - window,
        ),
        purge_outbox_job(engine, OUTBOX),
    ]


def scheduler(
    settings: Settings, engine: AsyncEngine, metrics: JobMetrics | None = None, clock: Clock | None = None
) -> Scheduler:
    return Scheduler(
        service=SERVICE,
        engine=engine,
        jobs=all_jobs(settings, engine),
        jobs_table=JOBS,
        runs_table=JOB_RUNS,
        metrics=metrics,
        clock=clock,
    )


@asynccontextmanager
async def open_scheduler(settings: Settings) -> AsyncIterator[Scheduler]:
    """For ``python -m users jobs``: a scheduler of its own that runs nothing unless told to."""
    engine = make_engine(settings.service_database_url(), schema=SCHEMA, pool_size=2)
    try:
        yield scheduler(settings, engine)
    finally:
        await engine.dispose()
