"""The ORM base of the notification schema, plus the shared outbox and inbox tables on the same metadata."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from notification.settings import SCHEMA
from shared.db.engine import schema_metadata
from shared.jobs.tables import job_runs_table, jobs_table
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


# Table definitions, like the models: notification.created goes out through ``outbox``; ``inbox``
# remembers which events the consumer has handled.
outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
# The scheduled jobs' state and runs (shared.jobs).
jobs = jobs_table(Base.metadata)
job_runs = job_runs_table(Base.metadata)


def load_models() -> None:
    """Import every model module so ``Base.metadata`` knows all tables (Alembic needs them all)."""
    import notification.contacts.models
    import notification.email.models
    import notification.erasure.models
    import notification.notifications.models
    import notification.report.models  # noqa: F401
