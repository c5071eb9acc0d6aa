"""Alembic environment of the notification service: its own history, version table in its own schema."""

from notification.database import Base, load_models
from shared.db.migrations import run_env

load_models()
run_env(Base.metadata)
