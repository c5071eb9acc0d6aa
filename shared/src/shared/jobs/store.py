"""Every statement the scheduler runs on ``jobs`` and ``job_runs``.

One run of a job at a time, across replicas, rests on a lease in the job's row: a claim is a
conditional UPDATE (``running_run_id IS NULL``), so two replicas racing for one due time serialise on
the row lock and the second finds it taken. The holder renews the lease while the run lasts; a lease
left to expire means its replica died, and whichever replica notices first marks the run ``failed``.

A lease row rather than an advisory lock: a session advisory lock is released only when Postgres
notices the connection is gone, which after a host or network failure takes as long as TCP keepalive
(hours by default), and it pins a pooled connection for the whole run (and does not survive a
transaction-pooling PgBouncer). A lease bounds the time to detect a dead replica by its length
whatever the network does, and leaves who holds what visible to the admin API.

Times come from the scheduler's injected clock, never the database's ``now()``, so tests can move
time; replicas' clocks only need to agree to well within the lease (NTP does that).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.pagination import Cursor
from shared.jobs.job import Job
from shared.jobs.schedule import Schedule


@dataclass(frozen=True, slots=True)
class JobState:
    name: str
    schedule: str
    overridden: bool
    paused: bool
    next_run_at: datetime
    running_run_id: uuid.UUID | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Row[Any]) -> JobState:
        return cls(**{name: getattr(row, name) for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: uuid.UUID
    job: str
    trigger: str
    due_at: datetime | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    detail: str | None
    owner: str

    @classmethod
    def of(cls, row: Row[Any]) -> RunRecord:
        return cls(**{name: getattr(row, name) for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class Claim:
    """A run this replica now holds the lease of."""

    job: str
    run_id: uuid.UUID
    started_at: datetime


class JobStore:
    def __init__(self, engine: AsyncEngine, jobs: Table, runs: Table) -> None:
        self.engine = engine
        self.jobs = jobs
        self.runs = runs

    async def sync(self, jobs: Sequence[Job], now: datetime) -> None:
        """Rows for new jobs (first due time after ``now``: no run at first start), and the code's
        default schedule for jobs no operator rescheduled, should that default have changed."""
        j = self.jobs
        async with self.engine.begin() as conn:
            for job in jobs:
                default = job.schedule.expression
                next_at = job.schedule.next_after(now)
                await conn.execute(
                    insert(j)
                    .values(
                        name=job.name, schedule=default, next_run_at=next_at, created_at=now, updated_at=now
                    )
                    .on_conflict_do_nothing(index_elements=[j.c.name])
                )
                await conn.execute(
                    update(j)
                    .where(j.c.name == job.name, j.c.overridden.is_(False), j.c.schedule != default)
                    .values(schedule=default, next_run_at=next_at, updated_at=now)
                )

    async def states(self) -> dict[str, JobState]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(self.jobs))).all()
        return {row.name: JobState.of(row) for row in rows}

    async def state(self, name: str) -> JobState | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(self.jobs).where(self.jobs.c.name == name))).one_or_none()
        return None if row is None else JobState.of(row)

    async def claim_due(
        self, seen: JobState, owner: str, now: datetime, lease: float, next_at: datetime
    ) -> Claim | None:
        """Take the due time ``seen`` had, and move it on to ``next_at``; None if another replica did.

        Every due time missed while no replica ran collapses into this one run (one catch-up).
        """
        j = self.jobs
        claim = Claim(seen.name, uuid.uuid4(), now)
        async with self.engine.begin() as conn:
            taken = await conn.scalar(
                update(j)
                .where(
                    j.c.name == seen.name,
                    j.c.paused.is_(False),
                    j.c.running_run_id.is_(None),
                    j.c.next_run_at == seen.next_run_at,
                    j.c.next_run_at <= now,
                    j.c.schedule == seen.schedule,
                )
                .values(next_run_at=next_at, **self._lease(claim, owner, now, lease))
                .returning(j.c.name)
            )
            if taken is None:
                return None
            await self._record_start(conn, claim, "schedule", seen.next_run_at, owner)
        return claim

    async def claim_manual(self, name: str, owner: str, now: datetime, lease: float) -> Claim | None:
        """Take the job for a run now, due or not, paused or not; None while a run of it is under way."""
        j = self.jobs
        claim = Claim(name, uuid.uuid4(), now)
        async with self.engine.begin() as conn:
            taken = await conn.scalar(
                update(j)
                .where(j.c.name == name, j.c.running_run_id.is_(None))
                .values(**self._lease(claim, owner, now, lease))
                .returning(j.c.name)
            )
            if taken is None:
                return None
            await self._record_start(conn, claim, "manual", None, owner)
        return claim

    def _lease(self, claim: Claim, owner: str, now: datetime, lease: float) -> dict[str, Any]:
        return {
            "running_run_id": claim.run_id,
            "lease_owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease),
            "updated_at": now,
        }

    async def _record_start(
        self, conn: AsyncConnection, claim: Claim, trigger: str, due_at: datetime | None, owner: str
    ) -> None:
        await conn.execute(
            self.runs.insert().values(
                id=claim.run_id,
                job=claim.job,
                trigger=trigger,
                due_at=due_at,
                started_at=claim.started_at,
                status="running",
                owner=owner,
            )
        )

    async def renew(self, claim: Claim, now: datetime, lease: float) -> bool:
        """Extend the lease; False when it was lost (it expired and the run was marked failed)."""
        j = self.jobs
        async with self.engine.begin() as conn:
            kept = await conn.scalar(
                update(j)
                .where(j.c.name == claim.job, j.c.running_run_id == claim.run_id)
                .values(lease_expires_at=now + timedelta(seconds=lease))
                .returning(j.c.name)
            )
        return kept is not None

    async def finish(self, claim: Claim, now: datetime, status: str, detail: str | None) -> bool:
        """Record the outcome and release the lease; False when the lease had already been lost."""
        j, r = self.jobs, self.runs
        values: dict[str, Any] = {"running_run_id": None, "lease_owner": None, "lease_expires_at": None}
        if status == "succeeded":
            values["last_success_at"] = now
        async with self.engine.begin() as conn:
            released = await conn.scalar(
                update(j)
                .where(j.c.name == claim.job, j.c.running_run_id == claim.run_id)
                .values(updated_at=now, **values)
                .returning(j.c.name)
            )
            if released is None:
                return False
            await conn.execute(
                update(r)
                .where(r.c.id == claim.run_id, r.c.status == "running")
                .values(status=status, finished_at=now, detail=detail)
            )
        return True

    async def reap(self, now: datetime, detail: str) -> list[RunRecord]:
        """Mark failed every run whose lease expired (its replica died), and free those jobs."""
        j, r = self.jobs, self.runs
        async with self.engine.begin() as conn:
            expired = (
                await conn.execute(
                    select(j.c.name, j.c.running_run_id)
                    .where(j.c.running_run_id.is_not(None), j.c.lease_expires_at < now)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not expired:
                return []
            ids = [row.running_run_id for row in expired]
            await conn.execute(
                update(j)
                .where(j.c.name.in_([row.name for row in expired]))
                .values(running_run_id=None, lease_owner=None, lease_expires_at=None, updated_at=now)
            )
            failed = (
                await conn.execute(
                    update(r)
                    .where(r.c.id.in_(ids), r.c.status == "running")
                    .values(status="failed", finished_at=now, detail=detail)
                    .returning(*r.c)
                )
            ).all()
        return [RunRecord.of(row) for row in failed]

    async def purge_runs(self, before: datetime, batch: int = 1000) -> int:
        """Delete finished runs that started before ``before``, a batch per transaction."""
        r = self.runs
        total = 0
        while True:
            doomed = (
                select(r.c.id)
                .where(r.c.started_at < before, r.c.status != "running")
                .limit(batch)
                .scalar_subquery()
            )
            async with self.engine.begin() as conn:
                deleted = (await conn.execute(delete(r).where(r.c.id.in_(doomed)))).rowcount or 0
            total += deleted
            if deleted < batch:
                return total

    async def set_paused(self, name: str, paused: bool, now: datetime, next_at: datetime) -> JobState | None:
        """Pause, or resume from the next due time after ``now`` (a pause's missed runs are not caught up)."""
        values: dict[str, Any] = {"paused": paused, "updated_at": now}
        if not paused:
            values["next_run_at"] = next_at
        return await self._update(name, values, only_if=None if paused else self.jobs.c.paused.is_(True))

    async def reschedule(self, name: str, schedule: Schedule, now: datetime) -> JobState | None:
        values = {
            "schedule": schedule.expression,
            "overridden": True,
            "next_run_at": schedule.next_after(now),
            "updated_at": now,
        }
        return await self._update(name, values)

    async def _update(self, name: str, values: dict[str, Any], only_if: Any = None) -> JobState | None:
        j = self.jobs
        async with self.engine.begin() as conn:
            statement = update(j).where(j.c.name == name)
            if only_if is not None:
                statement = statement.where(only_if)
            row = (await conn.execute(statement.values(**values).returning(*j.c))).one_or_none()
        return JobState.of(row) if row is not None else await self.state(name)

    async def last_runs(self) -> dict[str, RunRecord]:
        r = self.runs
        async with self.engine.connect() as conn:
            newest = r.c.job, r.c.started_at.desc(), r.c.id.desc()
            rows = (await conn.execute(select(r).ext(distinct_on(r.c.job)).order_by(*newest))).all()
        return {row.job: RunRecord.of(row) for row in rows}

    async def runs_page(self, name: str, limit: int, cursor: Cursor | None) -> list[RunRecord]:
        """Newest first; ``limit + 1`` rows tell the caller whether there is a next page."""
        r = self.runs
        query = select(r).where(r.c.job == name)
        if cursor is not None:
            query = query.where(tuple_(r.c.started_at, r.c.id) < tuple_(cursor.created_at, cursor.id))
        query = query.order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [RunRecord.of(row) for row in rows]

    async def run(self, run_id: uuid.UUID) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(self.runs).where(self.runs.c.id == run_id))).one_or_none()
        return None if row is None else RunRecord.of(row)
