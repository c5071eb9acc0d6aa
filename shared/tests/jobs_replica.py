"""A replica that claims a due run and then hangs in it, for the test that kills it with SIGKILL.

``python jobs_replica.py <dsn> <schema> <now, ISO 8601>``: prints ``started <run id>`` once the run
is recorded as running, then waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from shared.db.engine import make_engine, schema_metadata
from shared.jobs.job import Job, JobContext
from shared.jobs.scheduler import Scheduler
from shared.jobs.tables import job_runs_table, jobs_table
from shared.testing.clock import FakeClock


async def main(dsn: str, schema: str, now: str) -> None:
    metadata = schema_metadata(schema)
    engine = make_engine(dsn, schema=schema, pool_size=2)
    started = asyncio.Event()

    async def hang(ctx: JobContext) -> str:
        sys.stdout.write(f"started {ctx.run_id}\n")
        sys.stdout.flush()
        started.set()
        await asyncio.Event().wait()
        return "never"

    scheduler = Scheduler(
        service="test",
        engine=engine,
        jobs=[Job.define("every-minute", "* * * * *", hang)],
        jobs_table=jobs_table(metadata),
        runs_table=job_runs_table(metadata),
        clock=FakeClock(datetime.fromisoformat(now)),
        owner="doomed-replica",
    )
    await scheduler.tick()
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
