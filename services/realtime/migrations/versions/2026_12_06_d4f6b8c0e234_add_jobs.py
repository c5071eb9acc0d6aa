"""Add jobs and job_runs: the scheduled jobs' state and their runs (shared.jobs).

Revision ID: d4f6b8c0e234
Revises: 5d1e8a7c3b90
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4f6b8c0e234"
down_revision: str | Sequence[str] | None = "5d1e8a7c3b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "realtime"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("schedule", sa.String(200), nullable=False),
        sa.Column("overridden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("running_run_id", sa.Uuid(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_jobs"),
        schema=SCHEMA,
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="ck_job_runs_status"),
        schema=SCHEMA,
    )
    op.create_index("ix_job_runs_job_started_at_id", "job_runs", ["job", "started_at", "id"], schema=SCHEMA)
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("job_runs", schema=SCHEMA)
    op.drop_table("jobs", schema=SCHEMA)
