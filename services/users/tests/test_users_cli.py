"""The operator's commands: readable failures, and migrate as the service role."""

from __future__ import annotations

from typing import Any

import pytest

from users.cli import main, migrations_dir


def test_migrations_are_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert list((migrations_dir() / "versions").glob("*.py"))


@pytest.mark.parametrize("command", ["migrate", "serve", "bootstrap-db"])
def test_unreachable_database_is_one_readable_line(
    command: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/app")
    monkeypatch.delenv("USERS_DATABASE_URL", raising=False)
    monkeypatch.setattr("shared.service.cli.configure_logging", lambda *args: None)
    assert main([command]) == 3
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in caplog.text


def test_bootstrap_db_refuses_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(SystemExit) as exit_info:
        main(["bootstrap-db"])  # production settings without secrets do not even load
    assert exit_info.value.code == 2


@pytest.mark.integration
def test_migrate_is_idempotent(users_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("USERS_DATABASE_URL", users_db.service_url)
    monkeypatch.setattr("shared.service.cli.configure_logging", lambda *args: None)
    assert main(["migrate"]) == 0
