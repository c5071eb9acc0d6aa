"""Alembic environment of the orders service: its own history, its version table in schema ``orders``."""

from orders.database import Base, load_models
from shared.db.migrations import run_env

load_models()
run_env(Base.metadata)
