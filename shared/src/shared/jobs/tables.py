"""The ``jobs`` and ``job_runs`` tables inside a service's own schema (one Alembic revision each adds them).

``jobs`` holds one row per job: its schedule when an operator changed it, whether it is paused, the
next due time, and the lease of the run under way. ``job_runs`` records every run (kept 30 days).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    false,
    func,
)

RUN_STATUSES = ("running", "succeeded", "failed")


def jobs_table(metadata: MetaData) -> Table:
    return Table(
        "jobs",
        metadata,
        Column("name", String(100), primary_key=True),
        # The schedule in force; the code's default unless ``overridden`` (set through the admin API).
        Column("schedule", String(200), nullable=False),
        Column("overridden", Boolean, nullable=False, server_default=false()),
        Column("paused", Boolean, nullable=False, server_default=false()),
        # The due time not yet claimed: whichever replica claims it first moves it on (see store.py).
        Column("next_run_at", DateTime(timezone=True), nullable=False),
        # The lease of the run under way: at most one per job across every replica.
        Column("running_run_id", Uuid),
        Column("lease_owner", String(200)),
        Column("lease_expires_at", DateTime(timezone=True)),
        Column("last_success_at", DateTime(timezone=True)),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def job_runs_table(metadata: MetaData) -> Table:
    return Table(
        "job_runs",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("job", String(100), nullable=False),
        # "schedule" or "manual" (the admin API's /run, the CLI's ``jobs run``).
        Column("trigger", String(16), nullable=False),
        # The due time a scheduled run was claimed for (the oldest one missed, after a downtime).
        Column("due_at", DateTime(timezone=True)),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True)),
        Column("status", String(16), nullable=False),
        Column("detail", Text),
        Column("owner", String(200), nullable=False),
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        Index("ix_job_runs_job_started_at_id", "job", "started_at", "id"),
        Index("ix_job_runs_started_at", "started_at"),
    )
