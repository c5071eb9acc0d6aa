"""``python -m <service> jobs list | run <name>``: the operator's view of a service's jobs.

A command of the service kit's command line (``shared.service.cli``): ``jobs_command("orders.jobs")``
names the module whose ``open_scheduler(settings)`` gives a scheduler of the command's own; it is
imported when the command runs, so ``migrate`` and ``bootstrap-db`` load none of it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from shared.db.bootstrap import InfrastructureUnavailable
from shared.errors import AppError
from shared.service.cli import Command

if TYPE_CHECKING:  # the scheduler (and FastAPI with it) is imported by the command, not by the CLI
    from shared.jobs.scheduler import JobView, Scheduler

OpenScheduler = Callable[[], AbstractAsyncContextManager["Scheduler"]]


def jobs_command(module: str) -> Command[Any]:
    """The ``jobs`` command, its scheduler from ``<module>.open_scheduler(settings)``."""

    def run(settings: Any, args: argparse.Namespace) -> int:
        open_scheduler = importlib.import_module(module).open_scheduler
        return run_jobs_command(args, lambda: open_scheduler(settings))

    return Command("list the scheduled jobs, or run one now", run, add_jobs_arguments)


def add_jobs_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="jobs_command", required=True)
    actions.add_parser("list", help="every job: schedule, paused, next due time, last run")
    run = actions.add_parser("run", help="run a job now in this process and wait for it (exit 1 if it fails)")
    run.add_argument("name")


def run_jobs_command(args: argparse.Namespace, open_scheduler: OpenScheduler) -> int:
    try:
        return asyncio.run(_run(args, open_scheduler))
    except (OSError, DBAPIError) as exc:
        raise InfrastructureUnavailable(f"cannot reach the jobs' database: {exc}") from exc


async def _run(args: argparse.Namespace, open_scheduler: OpenScheduler) -> int:
    async with open_scheduler() as scheduler:
        try:
            if args.jobs_command == "list":
                _write_table([_row(view) for view in await scheduler.views()])
                return 0
            run = await scheduler.run_here(args.name)
        except AppError as exc:  # an unknown job, or one already running elsewhere
            sys.stderr.write(f"{exc.detail}\n")
            return 2
    if run is None:
        return 1
    sys.stdout.write(f"{run.job} {run.status}: {run.detail or ''}\n")
    return 0 if run.status == "succeeded" else 1


def _row(view: JobView) -> list[str]:
    last = view.last_run
    return [
        view.name,
        view.state.schedule,
        "paused" if view.state.paused else "active",
        "-" if view.state.paused else view.state.next_run_at.isoformat(timespec="seconds"),
        "-" if last is None else f"{last.status} {last.started_at.isoformat(timespec='seconds')}",
    ]


def _write_table(rows: list[list[str]]) -> None:
    header = ["NAME", "SCHEDULE", "STATE", "NEXT RUN", "LAST RUN"]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        sys.stdout.write("  ".join(cells).rstrip() + "\n")
