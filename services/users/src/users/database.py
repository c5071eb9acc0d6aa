"""The ORM base of the users schema; every model module registers its tables on this metadata."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.db.engine import schema_metadata
from users.settings import SCHEMA


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


def load_models() -> None:
    """Import every model module so ``Base.metadata`` knows all tables (Alembic needs them all)."""
    import users.accounts.models
    import users.avatars.models
    import users.jobs
    import users.outbox
    import users.throttling.models
    import users.tokens.models
    import users.verification.models  # noqa: F401
