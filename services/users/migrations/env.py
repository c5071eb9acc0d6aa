"""Alembic environment of the users service: its own history, its version table in schema ``users``."""

from shared.db.migrations import run_env
from users.database import Base, load_models

load_models()
run_env(Base.metadata)
