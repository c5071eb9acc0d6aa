"""The scheduler on the real Postgres, with an injected clock: no test waits for a real minute."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.bootstrap import ServiceDatabase, _connect, ensure_service_schema
from shared.db.engine import make_engine, schema_metadata
from shared.jobs.job import Job, JobContext, JobFailed, JobFunction
from shared.jobs.metrics import JobMetrics
from shared.jobs.purge import delete_in_batches
from shared.jobs.schedule import InvalidSchedule, Schedule
from shared.jobs.scheduler import REAPED, JobRunning, Scheduler, UnknownJob
from shared.jobs.tables import job_runs_table, jobs_table
from shared.service.settings import with_credentials
from shared.testing.clock import FakeClock

T0 = datetime(2026, 12, 1, 9, 59, 30, tzinfo=UTC)

# -- Schedules (no database) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "* * * *", "* * * * * *", "61 * * * *", "0 0 31 2 *", "*/5 * * * *\x00", "@daily", "x" * 300],
)
def test_schedule_refuses_what_is_not_five_field_cron(text: str) -> None:
    with pytest.raises(InvalidSchedule):
        Schedule.parse(text)


def test_schedule_due_times_and_interval() -> None:
    every5 = Schedule.parse("*/5  * * * *")
    assert every5.expression == "*/5 * * * *"
    assert every5.next_after(T0) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert every5.next_after(datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 10, 5, tzinfo=UTC
    )
    assert every5.interval_seconds(T0) == 300
    assert Schedule.parse("0 8 * * *").interval_seconds(T0) == 86400


# -- On Postgres ------------------------------------------------------------------------------------


@dataclass
class Env:
    engine: AsyncEngine
    dsn: str
    schema: str
    jobs: Table
    runs: Table
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))

    def scheduler(
        self, *jobs: Job, owner: str | None = None, registry: CollectorRegistry | None = None
    ) -> Scheduler:
        return Scheduler(
            service="test",
            engine=self.engine,
            jobs=list(jobs),
            jobs_table=self.jobs,
            runs_table=self.runs,
            clock=self.clock,
            metrics=JobMetrics.create(registry) if registry is not None else None,
            owner=owner,
        )

    async def lease_renewed(self, job: str, at_least: float, timeout: float = 30.0) -> None:
        """Wait until the run's lease reaches ``at_least`` seconds past the clock (renewed at 1/3)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with self.engine.connect() as conn:
                expires = await conn.scalar(
                    select(self.jobs.c.lease_expires_at).where(self.jobs.c.name == job)
                )
            if expires is not None and expires >= self.clock.now() + timedelta(seconds=at_least):
                return
            assert asyncio.get_running_loop().time() < deadline, f"the lease of {job} was not renewed"
            await asyncio.sleep(0.01)

    async def runs_of(self, job: str) -> list[tuple[str, str, datetime | None, str | None]]:
        r = self.runs
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(r.c.status, r.c.trigger, r.c.due_at, r.c.detail)
                .where(r.c.job == job)
                .order_by(r.c.started_at)
            )
            return [(row.status, row.trigger, row.due_at, row.detail) for row in rows]


@pytest.fixture
async def env(test_database_url: str) -> AsyncIterator[Env]:
    tag = uuid.uuid4().hex[:6]
    service = ServiceDatabase(schema=f"jobs_{tag}", role=f"jobs_{tag}_svc", password=None)
    await ensure_service_schema(test_database_url, service)
    dsn = with_credentials(test_database_url, service.role, None)
    metadata = schema_metadata(service.schema)
    jobs, runs = jobs_table(metadata), job_runs_table(metadata)
    engine = make_engine(dsn, schema=service.schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield Env(engine, dsn, service.schema, jobs, runs)
    finally:
        await engine.dispose()
        conn = await _connect(test_database_url)
        try:
            await conn.execute(f'DROP OWNED BY "{service.role}" CASCADE')
            await conn.execute(f'DROP ROLE "{service.role}"')
        finally:
            await conn.close()


def counting(calls: list[datetime]) -> JobFunction:
    async def run(ctx: JobContext) -> str:
        calls.append(ctx.started_at)
        await asyncio.sleep(0)  # let the other replica's tick interleave with this run
        return f"run {len(calls)}"

    return run


@pytest.mark.integration
async def test_two_replicas_run_a_minutely_job_once_per_due_time_over_an_hour(env: Env) -> None:
    calls: list[datetime] = []
    job = Job.define("every-minute", "* * * * *", counting(calls))
    a, b = env.scheduler(job, owner="replica-a"), env.scheduler(job, owner="replica-b")
    await asyncio.gather(a.sync(), b.sync())
    for _ in range(60 * 4):  # a simulated hour in 15-second steps, both replicas ticking at once
        env.clock.advance(15)
        await asyncio.gather(a.tick(), b.tick())
        await asyncio.gather(a.wait_idle(), b.wait_idle())
    runs = await env.runs_of("every-minute")
    due = [due_at for _, _, due_at, _ in runs]
    assert len(runs) == 60
    assert Counter(due) == {T0 + timedelta(seconds=30 + 60 * i): 1 for i in range(60)}
    assert {status for status, *_ in runs} == {"succeeded"}
    assert len(calls) == 60


@pytest.mark.integration
async def test_after_a_downtime_a_job_runs_once_then_on_schedule_again(env: Env) -> None:
    calls: list[datetime] = []
    job = Job.define("every-five", "*/5 * * * *", counting(calls))
    await env.scheduler(job).sync()
    env.clock.advance(3 * 3600)  # every replica was down for three hours: 36 due times missed
    restarted = env.scheduler(job)
    await restarted.tick()
    await restarted.wait_idle()
    await restarted.tick()
    await restarted.wait_idle()
    runs = await env.runs_of("every-five")
    assert [(s, t, d) for s, t, d, _ in runs] == [("succeeded", "schedule", T0 + timedelta(seconds=30))]
    state = await restarted.store.state("every-five")
    assert state is not None
    assert state.next_run_at == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


@pytest.mark.integration
async def test_a_replica_killed_mid_run_leaves_it_failed_and_the_next_due_time_runs(env: Env) -> None:
    calls: list[datetime] = []
    job = Job.define("every-minute", "* * * * *", counting(calls))
    survivor = env.scheduler(job, owner="survivor", registry=CollectorRegistry())
    await survivor.sync()  # due at 10:00
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("jobs_replica.py")),
        env.dsn,
        env.schema,
        "2026-12-01T10:00:05+00:00",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert doomed.stdout is not None
        line = (await asyncio.wait_for(doomed.stdout.readline(), 60)).decode()
        assert line.startswith("started ")
        os.kill(doomed.pid, signal.SIGKILL)
        assert await asyncio.wait_for(doomed.wait(), 30) == -signal.SIGKILL
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    run_id = uuid.UUID(line.split()[1])

    # Within the lease (60 s) nobody may take the run over: its replica might just be slow.
    env.clock.set(datetime(2026, 12, 1, 10, 0, 50, tzinfo=UTC))
    await survivor.tick()
    assert [s for s, *_ in await env.runs_of("every-minute")] == ["running"]

    # Past it, the next tick of any replica fails the run and runs the next due time (10:01).
    env.clock.set(datetime(2026, 12, 1, 10, 1, 10, tzinfo=UTC))
    await survivor.tick()
    await survivor.wait_idle()
    runs = await env.runs_of("every-minute")
    assert runs[0] == ("failed", "schedule", datetime(2026, 12, 1, 10, 0, tzinfo=UTC), REAPED)
    assert runs[1][:3] == ("succeeded", "schedule", datetime(2026, 12, 1, 10, 1, tzinfo=UTC))
    assert len(runs) == 2
    assert len(calls) == 1
    failed = await survivor.store.run(run_id)
    assert failed is not None
    assert failed.owner == "doomed-replica"
    assert survivor.metrics is not None
    assert survivor.metrics.runs.labels("every-minute", "failed")._value.get() == 1


@pytest.mark.integration
async def test_a_long_run_keeps_its_lease_and_only_one_run_at_a_time(env: Env) -> None:
    release = asyncio.Event()

    async def slow(ctx: JobContext) -> str:
        await release.wait()
        return "done"

    job = Job.define("slow", "* * * * *", slow)
    a, b = env.scheduler(job, owner="a"), env.scheduler(job, owner="b")
    await a.sync()
    env.clock.advance(31)  # 10:00:01
    await a.tick()
    for _ in range(20):  # five minutes go by; a renews its lease every 20 s
        env.clock.advance(15)
        await env.lease_renewed("slow", at_least=40)
        await b.tick()
    with pytest.raises(JobRunning):
        await b.trigger("slow")
    assert [s for s, *_ in await env.runs_of("slow")] == ["running"]
    release.set()
    await a.wait_idle()
    # The due times that passed during the run collapse into one run now.
    await b.tick()
    await b.wait_idle()
    assert [s for s, *_ in await env.runs_of("slow")] == ["succeeded", "succeeded"]


@pytest.mark.integration
async def test_pause_resume_and_schedule_survive_a_restart(env: Env) -> None:
    calls: list[datetime] = []
    job = Job.define("every-minute", "* * * * *", counting(calls))
    first = env.scheduler(job)
    await first.pause("every-minute")
    view = await first.reschedule("every-minute", Schedule.parse("*/10 * * * *"))
    assert view.state.paused
    assert view.state.schedule == "*/10 * * * *"

    env.clock.advance(3600)
    restarted = env.scheduler(job)  # a new process: the defaults in code are "* * * * *", not paused
    await restarted.tick()
    await restarted.wait_idle()
    assert calls == []
    [view] = await restarted.views()
    assert view.state.paused
    assert view.state.schedule == "*/10 * * * *"

    resumed = await restarted.resume("every-minute")
    assert not resumed.state.paused
    assert resumed.state.next_run_at == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # no catch-up for a pause
    env.clock.set(datetime(2026, 12, 1, 11, 0, 1, tzinfo=UTC))
    await restarted.tick()
    await restarted.wait_idle()
    assert len(calls) == 1


@pytest.mark.integration
async def test_a_changed_default_applies_unless_an_operator_rescheduled(env: Env) -> None:
    noop: JobFunction = counting([])
    await env.scheduler(Job.define("a", "0 * * * *", noop), Job.define("b", "0 * * * *", noop)).sync()
    await env.scheduler(Job.define("b", "0 * * * *", noop)).reschedule("b", Schedule.parse("30 * * * *"))
    upgraded = env.scheduler(Job.define("a", "15 * * * *", noop), Job.define("b", "15 * * * *", noop))
    views = {view.name: view.state for view in await upgraded.views()}
    assert views["a"].schedule == "15 * * * *"
    assert views["a"].next_run_at.minute == 15
    assert views["b"].schedule == "30 * * * *"


@pytest.mark.integration
async def test_run_now_runs_a_paused_job_and_refuses_a_second_while_running(env: Env) -> None:
    release = asyncio.Event()

    async def slow(ctx: JobContext) -> str:
        await release.wait()
        return "done"

    scheduler = env.scheduler(Job.define("slow", "0 0 * * *", slow))
    await scheduler.pause("slow")
    run_id = await scheduler.trigger("slow")
    with pytest.raises(JobRunning):
        await scheduler.trigger("slow")
    with pytest.raises(UnknownJob):
        await scheduler.trigger("nope")
    release.set()
    await scheduler.wait_idle()
    run = await scheduler.store.run(run_id)
    assert run is not None
    assert (run.status, run.trigger, run.detail) == ("succeeded", "manual", "done")
    view = await scheduler.view("slow")
    assert view.last_run is not None
    assert view.last_run.id == run_id


@pytest.mark.integration
async def test_failures_are_recorded_without_the_exception_text_unless_the_job_chose_it(env: Env) -> None:
    async def broken(ctx: JobContext) -> str:
        raise RuntimeError("postgresql://user:secret@db/app refused")

    async def declined(ctx: JobContext) -> str:
        raise JobFailed("3 orders could not be cancelled")

    registry = CollectorRegistry()
    scheduler = env.scheduler(
        Job.define("broken", "* * * * *", broken),
        Job.define("declined", "* * * * *", declined),
        registry=registry,
    )
    assert (await scheduler.run_here("broken")) is not None
    await scheduler.run_here("declined")
    [(status, _, _, detail)] = await env.runs_of("broken")
    assert status == "failed"
    assert detail is not None
    assert "secret" not in detail
    assert "RuntimeError" in detail
    assert (await env.runs_of("declined"))[0][3] == "3 orders could not be cancelled"
    assert registry.get_sample_value("job_runs_total", {"job": "broken", "status": "failed"}) == 1
    assert registry.get_sample_value("job_runs_total", {"job": "broken", "status": "succeeded"}) == 0


@pytest.mark.integration
async def test_last_success_metric_and_run_retention(env: Env) -> None:
    registry = CollectorRegistry()
    scheduler = env.scheduler(Job.define("daily", "0 8 * * *", counting([])), registry=registry)
    await scheduler.tick()

    def gauge(name: str) -> float | None:
        return registry.get_sample_value(name, {"job": "daily"})

    assert gauge("job_interval_seconds") == 86400
    assert gauge("job_last_success_timestamp_seconds") == T0.timestamp()  # first scheduled, never run
    await scheduler.run_here("daily")
    await scheduler.tick()
    assert gauge("job_last_success_timestamp_seconds") == T0.timestamp()
    env.clock.advance(31 * 86400)
    async with env.engine.begin() as conn:  # the run so far started 31 days ago
        await conn.execute(update(env.runs).values(started_at=T0))
    await scheduler.run_here("daily")
    await scheduler.tick()  # purges the old run, and claims the catch-up of the missed 08:00s
    await scheduler.wait_idle()
    await scheduler.tick()
    assert sorted(trigger for _, trigger, _, _ in await env.runs_of("daily")) == ["manual", "schedule"]
    assert gauge("job_last_success_timestamp_seconds") == env.clock.now().timestamp()


@pytest.mark.integration
async def test_delete_in_batches_removes_only_what_matches(env: Env) -> None:
    r = env.runs
    async with env.engine.begin() as conn:
        await conn.execute(
            r.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "job": "j",
                    "trigger": "manual",
                    "started_at": T0 - timedelta(days=i),
                    "status": "succeeded",
                    "owner": "x",
                }
                for i in range(25)
            ],
        )
    deleted = await delete_in_batches(env.engine, r, r.c.started_at < T0 - timedelta(days=9), batch=4)
    assert deleted == 15
    async with env.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(r)) == 10


@pytest.mark.integration
async def test_the_loop_runs_due_jobs_as_the_clock_moves_and_stops_when_asked(env: Env) -> None:
    calls: list[datetime] = []
    scheduler = env.scheduler(Job.define("every-minute", "* * * * *", counting(calls)))
    await scheduler.sync()  # due at 10:00, whenever the loop's first tick happens
    loop = asyncio.create_task(scheduler.run())
    try:
        for minute in range(1, 4):
            await asyncio.sleep(0)
            env.clock.set(T0 + timedelta(seconds=30 + 60 * (minute - 1), milliseconds=1))
            deadline = asyncio.get_running_loop().time() + 30
            while len(calls) < minute:
                assert asyncio.get_running_loop().time() < deadline, f"no run for minute {minute}"
                await asyncio.sleep(0.01)
    finally:
        scheduler.stop()
        await asyncio.wait_for(loop, 30)
    assert [status for status, *_ in await env.runs_of("every-minute")] == ["succeeded"] * 3
