"""The admin API of a service's jobs (contract section 8), one router factory every service mounts.

Each service serves ``/api/v1/admin/jobs/<its name>/...``; the gateway routes that prefix to it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, Field, field_validator

from shared.db.pagination import Page
from shared.jobs.job import NAME
from shared.jobs.schedule import InvalidSchedule, Schedule
from shared.jobs.scheduler import JobView, Scheduler, UnknownJob
from shared.jobs.store import RunRecord
from shared.service.dependencies import PageParamsDep, admin_principal

RunStatus = Literal["running", "succeeded", "failed"]


class RunOut(BaseModel):
    id: uuid.UUID
    job: str
    trigger: Literal["schedule", "manual"]
    due_at: datetime | None
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    detail: str | None

    @classmethod
    def of(cls, run: RunRecord) -> RunOut:
        return cls.model_validate(run, from_attributes=True)


class LastRunOut(BaseModel):
    id: uuid.UUID
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    detail: str | None


class JobOut(BaseModel):
    name: str
    service: str
    schedule: str = Field(description="Five-field cron expression, UTC")
    paused: bool
    next_run_at: datetime | None = Field(description="The next due time; null while paused")
    last_run: LastRunOut | None

    @classmethod
    def of(cls, view: JobView) -> JobOut:
        last = view.last_run
        return cls(
            name=view.name,
            service=view.service,
            schedule=view.state.schedule,
            paused=view.state.paused,
            next_run_at=None if view.state.paused else view.state.next_run_at,
            last_run=None if last is None else LastRunOut.model_validate(last, from_attributes=True),
        )


class JobList(BaseModel):
    items: list[JobOut]


class RunStarted(BaseModel):
    run_id: uuid.UUID


class ScheduleIn(BaseModel):
    schedule: str = Field(
        max_length=200, description="Five-field cron expression, UTC", examples=["*/5 * * * *"]
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            return Schedule.parse(value).expression
        except InvalidSchedule as exc:
            raise ValueError(f"not a valid cron expression: {exc}") from exc


def _scheduler(request: Request) -> Scheduler:
    # The service's resources hold it (its supervisor runs it); a bare app may set it on app.state.
    state = request.app.state
    scheduler = getattr(getattr(state, "resources", None), "scheduler", None) or getattr(
        state, "scheduler", None
    )
    if not isinstance(scheduler, Scheduler):
        raise TypeError("app.state.scheduler is not configured")
    return scheduler


SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]


async def _known_job(scheduler: SchedulerDep, name: Annotated[str, Path(max_length=100)]) -> str:
    """The job named in the path, or 404 (a name that could never be a job's included)."""
    if not NAME.fullmatch(name):
        raise UnknownJob(scheduler.service, name)
    scheduler.job(name)
    return name


JobName = Annotated[str, Depends(_known_job)]


def jobs_router(service: str) -> APIRouter:
    """``/api/v1/admin/jobs/<service>``: list, pause, resume, run, reschedule and the runs (admins only)."""
    router = APIRouter(
        prefix=f"/api/v1/admin/jobs/{service}",
        tags=["jobs"],
        dependencies=[Depends(admin_principal)],
    )

    @router.get("", response_model=JobList)
    async def list_jobs(scheduler: SchedulerDep) -> JobList:
        """This service's scheduled jobs, with their schedule and last run."""
        return JobList(items=[JobOut.of(view) for view in await scheduler.views()])

    @router.post("/{name}/pause", response_model=JobOut)
    async def pause_job(scheduler: SchedulerDep, name: JobName) -> JobOut:
        """Stop scheduling the job (a run under way finishes); it stays paused across restarts."""
        return JobOut.of(await scheduler.pause(name))

    @router.post("/{name}/resume", response_model=JobOut)
    async def resume_job(scheduler: SchedulerDep, name: JobName) -> JobOut:
        """Schedule the job again from its next due time (runs missed while paused are not made up)."""
        return JobOut.of(await scheduler.resume(name))

    @router.post("/{name}/run", response_model=RunStarted, status_code=status.HTTP_202_ACCEPTED)
    async def run_job(scheduler: SchedulerDep, name: JobName) -> RunStarted:
        """Run the job once now, paused or not; 409 while a run of it is under way."""
        return RunStarted(run_id=await scheduler.trigger(name))

    @router.put("/{name}/schedule", response_model=JobOut)
    async def reschedule_job(scheduler: SchedulerDep, name: JobName, body: ScheduleIn) -> JobOut:
        """Replace the job's schedule (five-field cron, UTC); it survives restarts."""
        return JobOut.of(await scheduler.reschedule(name, Schedule(body.schedule)))

    @router.get("/{name}/runs", response_model=Page[RunOut])
    async def job_runs(scheduler: SchedulerDep, name: JobName, page: PageParamsDep) -> Page[RunOut]:
        """The job's runs of the last 30 days, newest first."""
        runs, cursor = await scheduler.runs(name, page.limit, page.cursor)
        return Page[RunOut](items=[RunOut.of(run) for run in runs], next_cursor=cursor and cursor.encode())

    return router
