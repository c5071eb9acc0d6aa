"""The ORM base of the orders schema, and the outbox and inbox tables that live beside the models."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase

from orders.settings import SCHEMA
from shared.db.engine import schema_metadata
from shared.jobs.tables import job_runs_table, jobs_table
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


# Events written in the transaction that caused them, and events this service has already handled.
OUTBOX: Table = outbox_table(Base.metadata)
INBOX: Table = inbox_table(Base.metadata)
# The scheduled jobs' state and runs (shared.jobs).
JOBS: Table = jobs_table(Base.metadata)
JOB_RUNS: Table = job_runs_table(Base.metadata)


def load_models() -> None:
    """Import every model module so ``Base.metadata`` knows all tables (Alembic needs them all)."""
    import orders.idempotency.models
    import orders.order.models  # noqa: F401
