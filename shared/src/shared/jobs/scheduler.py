"""The scheduler every replica of a service runs: claims due runs, runs them, renews their leases.

Every replica ticks; the database decides which one runs a due time (``store.py`` says how). After a
downtime a job runs once, not once per missed due time (Kubernetes CronJob's missed runs, without a
burst). A run whose replica died is marked ``failed`` once its lease has expired (``lease`` seconds
after its last renewal) by the next tick of any replica; a run cut short by a shutdown is marked
``failed`` by its own replica. Runs are kept ``retention`` (30 days).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.pagination import Cursor
from shared.errors import Conflict, NotFound
from shared.jobs.clock import Clock, SystemClock
from shared.jobs.job import Job, JobContext, JobFailed
from shared.jobs.metrics import JobMetrics
from shared.jobs.schedule import Schedule
from shared.jobs.store import Claim, JobState, JobStore, RunRecord

log = logging.getLogger(__name__)

DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, asyncpg.PostgresError, OSError)

REAPED = "the replica running it stopped renewing its lease (it died or lost the database)"
INTERRUPTED = "interrupted: the replica shut down during the run"


class UnknownJob(NotFound):
    def __init__(self, service: str, name: str) -> None:
        super().__init__(f"{service} has no job named {name!r}.")


class JobRunning(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"A run of {name} is under way; try again when it has finished.")


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the admin API and the CLI show it."""

    name: str
    service: str
    state: JobState
    last_run: RunRecord | None


class Scheduler:
    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        jobs: Sequence[Job],
        jobs_table: Table,
        runs_table: Table,
        metrics: JobMetrics | None = None,
        clock: Clock | None = None,
        lease: float = 60.0,
        poll: float = 15.0,
        retention: timedelta = timedelta(days=30),
        stop_grace: float = 10.0,
        owner: str | None = None,
    ) -> None:
        self.service = service
        self.jobs = {job.name: job for job in jobs}
        self.store = JobStore(engine, jobs_table, runs_table)
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.lease = lease
        self.poll = poll
        self.retention = retention
        self.stop_grace = stop_grace
        # Names the replica in a lease and a run (a column of 200 characters).
        self.owner = (owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")[-200:]
        self._synced = False
        self._sync_lock = asyncio.Lock()
        self._running: dict[uuid.UUID, asyncio.Task[RunRecord | None]] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_purge: datetime | None = None
        if metrics is not None:
            for name in self.jobs:
                metrics.declare(name)

    # The loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick until stopped; then wait ``stop_grace`` for runs under way, and fail the rest."""
        backoff = 1.0
        try:
            while not self._stopping.is_set():
                try:
                    # Measured from the tick's own "now": the clock may move while the tick runs.
                    now = self.clock.now()
                    wake_at = now + timedelta(seconds=await self.tick(now))
                    backoff = 1.0
                except DATABASE_ERRORS as exc:
                    log.warning("job scheduler cannot reach the database", extra={"error": str(exc)})
                    wake_at = self.clock.now() + timedelta(seconds=backoff)
                    backoff = min(backoff * 2, self.poll)
                except Exception:
                    # A bug, but one that must not stop every job of this replica for good.
                    log.exception("job scheduler tick failed; trying again")
                    wake_at = self.clock.now() + timedelta(seconds=backoff)
                    backoff = min(backoff * 2, self.poll)
                await self._sleep_until(wake_at)
        finally:
            await self.close()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _sleep_until(self, moment: datetime) -> None:
        sleeping = asyncio.ensure_future(self.clock.sleep_until(moment))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, woken):
                task.cancel()
            await asyncio.gather(sleeping, woken, return_exceptions=True)
        self._wake.clear()

    async def tick(self, now: datetime | None = None) -> float:
        """Fail dead replicas' runs, start what is due, purge old runs; seconds until the next tick."""
        now = now or self.clock.now()
        await self.sync()
        for run in await self.store.reap(now, REAPED):
            log.error("job run failed: its replica died", extra={"job": run.job, "run_id": str(run.id)})
            self._count(run.job, "failed", None)
        if self._last_purge is None or now - self._last_purge >= timedelta(hours=1):
            self._last_purge = now
            purged = await self.store.purge_runs(now - self.retention)
            if purged:
                log.info("purged old job runs", extra={"deleted": purged})
        states = await self.store.states()
        wait = self.poll
        for name, job in self.jobs.items():
            state = states.get(name)
            if state is None:
                continue
            self._observe(job, state)
            if state.paused or state.running_run_id is not None:
                # A run under way: its due times wait for it (one catch-up once it has finished).
                continue
            if state.next_run_at <= now:
                schedule = Schedule(state.schedule)
                claim = await self.store.claim_due(
                    state, self.owner, now, self.lease, schedule.next_after(now)
                )
                if claim is not None:
                    self._start(job, claim)
                    wait = min(wait, (schedule.next_after(now) - now).total_seconds())
                continue
            wait = min(wait, (state.next_run_at - now).total_seconds())
        return max(wait, 0.05)

    async def sync(self) -> None:
        """The jobs' rows exist (once per scheduler; the API may need them before the first tick)."""
        if self._synced:
            return
        async with self._sync_lock:
            if not self._synced:
                await self.store.sync(list(self.jobs.values()), self.clock.now())
                self._synced = True

    def _observe(self, job: Job, state: JobState) -> None:
        if self.metrics is None:
            return
        since = state.last_success_at or state.created_at
        self.metrics.last_success.labels(job.name).set(since.timestamp())
        self.metrics.interval.labels(job.name).set(
            Schedule(state.schedule).interval_seconds(state.next_run_at)
        )

    # Runs ----------------------------------------------------------------------------------------

    def _start(self, job: Job, claim: Claim) -> asyncio.Task[RunRecord | None]:
        task = asyncio.create_task(self._execute(job, claim), name=f"job-{job.name}")
        self._running[claim.run_id] = task
        task.add_done_callback(lambda _: self._running.pop(claim.run_id, None))
        return task

    async def _execute(self, job: Job, claim: Claim) -> RunRecord | None:
        log.info("job run started", extra={"job": job.name, "run_id": str(claim.run_id)})
        started = time.perf_counter()
        work = asyncio.create_task(job.run(JobContext(claim.run_id, claim.started_at, self.clock)))
        lost = asyncio.Event()
        renewing = asyncio.create_task(self._renew(claim, work, lost))
        status = "failed"
        detail: str | None = INTERRUPTED
        try:
            try:
                summary = await work
                status, detail = "succeeded", summary
            except JobFailed as exc:
                detail = str(exc)[:2000]
            except asyncio.CancelledError:
                if lost.is_set():
                    log.error("job run lost its lease; stopped", extra={"job": job.name})
                    return await self.store.run(claim.run_id)
                raise
            except Exception as exc:
                # The type only: an exception's text may carry SQL or an address; the log has it all.
                log.exception("job run failed", extra={"job": job.name, "run_id": str(claim.run_id)})
                detail = f"failed with {type(exc).__name__} (see the service's log)"
        finally:
            renewing.cancel()
            work.cancel()
            await asyncio.gather(renewing, work, return_exceptions=True)
            if not lost.is_set():
                await self._finish(job, claim, status, detail, time.perf_counter() - started)
        return await self.store.run(claim.run_id)

    async def _finish(self, job: Job, claim: Claim, status: str, detail: str | None, seconds: float) -> None:
        try:
            recorded = await self.store.finish(claim, self.clock.now(), status, detail)
        except DATABASE_ERRORS as exc:
            # The lease runs out and another tick marks the run failed: never two outcomes.
            log.warning("job outcome not recorded", extra={"job": job.name, "error": str(exc)})
            return
        if recorded:
            log.info("job run finished", extra={"job": job.name, "status": status, "detail": detail})
            self._count(job.name, status, seconds)
        # A due time that passed during the run is taken now, not at the next poll.
        self._wake.set()

    async def _renew(self, claim: Claim, work: asyncio.Task[str | None], lost: asyncio.Event) -> None:
        # Renewed a third of the lease after the claim, or after the last renewal: two can fail in turn.
        renew_at = claim.started_at
        while True:
            renew_at += timedelta(seconds=self.lease / 3)
            await self.clock.sleep_until(renew_at)
            renew_at = self.clock.now()
            try:
                kept = await self.store.renew(claim, renew_at, self.lease)
            except DATABASE_ERRORS as exc:
                log.warning(
                    "job lease not renewed; trying again", extra={"job": claim.job, "error": str(exc)}
                )
                continue
            if not kept:
                # Another replica found the lease expired and failed the run: stop, and record nothing.
                lost.set()
                work.cancel()
                return

    def _count(self, job: str, status: str, seconds: float | None) -> None:
        if self.metrics is None:
            return
        self.metrics.runs.labels(job, status).inc()
        if seconds is not None:
            self.metrics.duration.labels(job).observe(seconds)

    async def wait_idle(self) -> None:
        """Return once the runs this replica started have finished (tests, the CLI)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def close(self) -> None:
        """Give runs under way ``stop_grace`` to finish, then cancel them (each is marked failed)."""
        tasks = list(self._running.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.stop_grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # What the admin API and the CLI do -----------------------------------------------------------

    def job(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            raise UnknownJob(self.service, name)
        return job

    async def views(self) -> list[JobView]:
        await self.sync()
        states = await self.store.states()
        last = await self.store.last_runs()
        return [
            JobView(name, self.service, states[name], last.get(name)) for name in self.jobs if name in states
        ]

    async def view(self, name: str) -> JobView:
        self.job(name)
        await self.sync()
        state = await self.store.state(name)
        if state is None:
            raise UnknownJob(self.service, name)
        runs = await self.store.runs_page(name, 1, None)
        return JobView(name, self.service, state, runs[0] if runs else None)

    async def trigger(self, name: str) -> uuid.UUID:
        """Start a run now on this replica, paused or not; ``JobRunning`` while one is under way."""
        claim = await self._claim_manual(name)
        self._start(self.jobs[name], claim)
        return claim.run_id

    async def run_here(self, name: str) -> RunRecord | None:
        """Run it now and wait for the outcome (the CLI's ``jobs run``)."""
        claim = await self._claim_manual(name)
        return await self._execute(self.jobs[name], claim)

    async def _claim_manual(self, name: str) -> Claim:
        self.job(name)
        await self.sync()
        claim = await self.store.claim_manual(name, self.owner, self.clock.now(), self.lease)
        if claim is None:
            raise JobRunning(name)
        return claim

    async def pause(self, name: str) -> JobView:
        return await self._set_paused(name, True)

    async def resume(self, name: str) -> JobView:
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str, paused: bool) -> JobView:
        self.job(name)
        await self.sync()
        now = self.clock.now()
        state = await self.store.state(name)
        if state is None:
            raise UnknownJob(self.service, name)
        await self.store.set_paused(name, paused, now, Schedule(state.schedule).next_after(now))
        self._wake.set()
        return await self.view(name)

    async def reschedule(self, name: str, schedule: Schedule) -> JobView:
        self.job(name)
        await self.sync()
        await self.store.reschedule(name, schedule, self.clock.now())
        self._wake.set()
        return await self.view(name)

    async def runs(
        self, name: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[RunRecord], Cursor | None]:
        self.job(name)
        rows = await self.store.runs_page(name, limit, cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (Cursor(rows[-1].started_at, rows[-1].id) if more else None)


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler, stop_timeout: float = 20.0) -> AsyncIterator[Scheduler]:
    """The scheduler's loop as a task for the block's length (a lifespan until the supervisor runs it)."""
    task = asyncio.create_task(scheduler.run(), name=f"{scheduler.service}-jobs")
    try:
        yield scheduler
    finally:
        scheduler.stop()
        done, _ = await asyncio.wait({task}, timeout=stop_timeout)
        if not done:
            log.warning("job scheduler did not stop in time", extra={"service": scheduler.service})
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
