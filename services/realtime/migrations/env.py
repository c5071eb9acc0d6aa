"""Alembic environment of the realtime service: its own history, its version table in schema ``realtime``."""

from realtime.streams.models import METADATA
from shared.db.migrations import run_env

run_env(METADATA)
