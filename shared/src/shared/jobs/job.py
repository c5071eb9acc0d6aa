"""A job as a service declares it: a name, a default schedule, and the coroutine that does the work."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.jobs.clock import Clock
from shared.jobs.schedule import Schedule

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a run is told: its id, when it started on the scheduler's clock, and that clock."""

    run_id: uuid.UUID
    started_at: datetime
    clock: Clock


# Returns a one-line summary for the run's ``detail`` ("deleted 120 rows"), or None.
JobFunction = Callable[[JobContext], Coroutine[Any, Any, str | None]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    schedule: Schedule
    run: JobFunction

    @classmethod
    def define(cls, name: str, schedule: str, run: JobFunction) -> Job:
        if not NAME.fullmatch(name):
            raise ValueError(f"job names are lower-case words joined by hyphens, not {name!r}")
        return cls(name=name, schedule=Schedule.parse(schedule), run=run)


class JobFailed(Exception):
    """A failure a job describes itself; its message becomes the run's ``detail`` (no secrets in it).

    Any other exception is recorded by its type only: its text may carry SQL or a connection string.
    """
