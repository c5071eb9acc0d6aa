"""Alembic environment of the realtime service: its own history, its version table in schema ``realtime``."""

import realtime.rooms.models  # noqa: F401  (registers the rooms tables)
from realtime.streams.models import METADATA
from shared.db.migrations import run_env

run_env(METADATA)
