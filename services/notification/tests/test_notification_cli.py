"""The operator's commands, run as an operator runs them: as processes."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from notification.cli import migrations_dir

from .conftest import NotificationDb


def test_migrations_are_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert list((migrations_dir() / "versions").glob("2026_*_create_notification_tables.py"))


async def run(command: str, **env: str) -> tuple[int, str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFICATION_", "DATABASE_URL"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notification",
        command,
        env={**child_env, "LOG_FORMAT": "console", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stderr.decode()


async def test_what_cannot_work_says_so_in_one_line() -> None:
    (migrated, no_db), (bootstrapped, no_secrets) = await asyncio.gather(
        run("migrate", APP_ENV="development", DATABASE_URL="postgresql://postgres@127.0.0.1:1/app"),
        run("bootstrap-db", APP_ENV="production"),
    )
    assert migrated == 3
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in no_db
    assert "Traceback" not in no_db
    # Production settings without real secrets do not even load.
    assert bootstrapped == 2
    assert "must be set to a real secret when environment=production" in no_secrets


@pytest.mark.integration
async def test_migrate_is_idempotent_and_serve_names_a_missing_broker(
    notification_db: NotificationDb,
) -> None:
    db = {"APP_ENV": "test", "NOTIFICATION_DATABASE_URL": notification_db.service_url}
    (migrated, _), (served, stderr) = await asyncio.gather(
        run("migrate", **db), run("serve", **db, AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
    )
    assert migrated == 0
    assert served == 3
    assert "RabbitMQ is not reachable at 127.0.0.1:1" in stderr
