"""``migrate`` under an advisory lock: replicas started together (init containers) migrate once."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.db.bootstrap import _connect
from shared.db.migrations import migration_lock_key, upgrade

pytestmark = pytest.mark.integration

ENV = """
from sqlalchemy import MetaData
from shared.db.migrations import run_env

run_env(MetaData())
"""
REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("things", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("things")
"""


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "versions" / "2026_01_01_a1_create_things.py").write_text(REVISION)
    return tmp_path


@pytest.fixture
async def schema(test_database_url: str) -> str:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    conn = await _connect(test_database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    return name


async def _waiting_for_the_lock(conn: asyncpg.Connection, deadline: float) -> None:
    while time.monotonic() < deadline:
        # This run's own database only: other tests on the server take advisory locks too.
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the migration never queued behind the advisory lock")


async def test_a_migration_waits_for_the_one_in_progress_and_then_finds_nothing_to_do(
    test_database_url: str, migrations: Path, schema: str
) -> None:
    holder = await _connect(test_database_url)
    try:
        # Another replica is migrating: it holds the lock.
        await holder.execute("SELECT pg_advisory_lock(hashtext($1))", migration_lock_key(schema))
        waiting = asyncio.create_task(asyncio.to_thread(upgrade, migrations, test_database_url, schema))
        await _waiting_for_the_lock(holder, time.monotonic() + 60)
        assert not waiting.done()
        assert await holder.fetchval("SELECT to_regclass($1)", f"{schema}.alembic_version") is None
        await holder.execute("SELECT pg_advisory_unlock(hashtext($1))", migration_lock_key(schema))
        await asyncio.wait_for(waiting, 60)
        assert await holder.fetchval(f'SELECT count(*) FROM "{schema}".alembic_version') == 1
        assert await holder.fetchval("SELECT to_regclass($1)", f"{schema}.things") is not None
    finally:
        await holder.close()


async def test_replicas_migrating_at_once_apply_each_revision_once(
    test_database_url: str, migrations: Path, schema: str
) -> None:
    # Processes, as replicas are: alembic's context is a process-wide global.
    script = "import sys; from pathlib import Path; from shared.db.migrations import upgrade; "
    script += "upgrade(Path(sys.argv[1]), sys.argv[2], sys.argv[3])"
    runs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            str(migrations),
            test_database_url,
            schema,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(run.communicate() for run in runs)), 120)
    for run, (_, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stderr.decode()[-2000:]
    conn = await _connect(test_database_url)
    try:
        assert await conn.fetch(f'SELECT version_num FROM "{schema}".alembic_version') == [("a1",)]
        # The lock is released: nothing is left holding it.
        assert await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", migration_lock_key(schema))
    finally:
        await conn.close()
