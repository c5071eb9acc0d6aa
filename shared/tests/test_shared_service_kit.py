"""The service kit: one command line and one database-settings mixin, used by every component."""

from __future__ import annotations

import argparse

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from shared.service.cli import Command, ServiceCli
from shared.service.settings import BaseServiceSettings, DatabaseServiceSettings


class KitSettings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KIT_")

    port: int = 8099
    database_schema = "kit"


class NoDatabaseSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NODB_")

    port: int = 8098


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "ENVIRONMENT", "DATABASE_URL", "KIT_DATABASE_URL", "KIT_DB_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("shared.service.cli.configure_logging", lambda *args: None)


def test_the_database_names_follow_the_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = KitSettings()
    assert settings.db_role == "kit_svc"
    assert settings.service_database_url() == "postgresql://kit_svc@127.0.0.1:5432/app"
    assert settings.service_database().schema == "kit"
    monkeypatch.setenv("KIT_DB_ROLE", "other")
    monkeypatch.setenv("KIT_DB_PASSWORD", "p w")
    monkeypatch.setenv("KIT_DB_POOL_SIZE", "3")
    settings = KitSettings()
    assert settings.service_database_url() == "postgresql://other:p%20w@127.0.0.1:5432/app"
    assert settings.db_pool_size == 3
    monkeypatch.setenv("KIT_DATABASE_URL", "postgresql://custom@elsewhere/app")
    assert KitSettings().service_database_url() == "postgresql://custom@elsewhere/app"


def test_the_service_url_is_not_taken_for_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # ``<PREFIX>DATABASE_URL`` is also ``<prefix>`` + ``database_url``: pydantic-settings would read it into
    # the shared field too, and ``bootstrap-db`` would then log in as the service role.
    monkeypatch.setenv("KIT_DATABASE_URL", "postgresql://kit:pw@elsewhere/app")
    settings = KitSettings()
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/app"
    assert settings.service_database_url() == "postgresql://kit:pw@elsewhere/app"
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin@db/app")
    assert KitSettings().database_url == "postgresql://admin@db/app"
    assert KitSettings(database_url="postgresql://init@db/app").database_url == "postgresql://init@db/app"


def test_production_needs_the_database_password_unless_a_whole_url_is_given() -> None:
    with pytest.raises(ValidationError, match="KIT_DB_PASSWORD"):
        KitSettings(environment="production")
    with pytest.raises(ValidationError, match="KIT_DB_PASSWORD"):
        KitSettings(environment="production", db_password=SecretStr("changeme"))
    assert KitSettings(environment="production", db_password=SecretStr("a-real-one")).db_password
    assert KitSettings(environment="production", service_url="postgresql://kit:pw@db/app").service_url


def test_a_service_adds_commands_with_arguments_of_their_own() -> None:
    seen: list[tuple[str, str]] = []

    def jobs_arguments(parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list")
        actions.add_parser("run").add_argument("job")

    def jobs(settings: KitSettings, args: argparse.Namespace) -> int:
        seen.append((args.action, getattr(args, "job", "")))
        return 7

    cli = ServiceCli(
        name="kit",
        description="A test service.",
        settings=KitSettings,
        app="nowhere:create_app",
        commands={"jobs": Command("run a job now", jobs, jobs_arguments)},
    )
    assert cli.main(["jobs", "run", "expire"]) == 7
    assert cli.main(["jobs", "list"]) == 7
    assert seen == [("run", "expire"), ("list", "")]


def test_a_component_without_a_schema_has_no_database_commands(capsys: pytest.CaptureFixture[str]) -> None:
    cli = ServiceCli(name="nodb", description="No database.", settings=NoDatabaseSettings, app="x:y")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["migrate"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'migrate'" in capsys.readouterr().err


def test_a_command_cannot_replace_a_builtin_one() -> None:
    cli = ServiceCli(
        name="kit",
        description="A test service.",
        settings=KitSettings,
        app="x:y",
        commands={"migrate": Command("not the real one", lambda settings, args: 0)},
    )
    with pytest.raises(ValueError, match="migrate"):
        cli.main(["migrate"])


def test_an_invalid_configuration_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIT_DB_POOL_SIZE", "hunter2-secret")
    cli = ServiceCli(name="kit", description="A test service.", settings=KitSettings, app="x:y")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["migrate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "kit: invalid configuration:\n  db_pool_size:" in err
    assert "hunter2" not in err


def test_bootstrap_db_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("KIT_DB_PASSWORD", "a-real-password")
    # An unreachable server: were bootstrap-db not refused first, it would answer 3, not 2.
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/app")
    cli = ServiceCli(name="kit", description="A test service.", settings=KitSettings, app="x:y")
    assert cli.main(["bootstrap-db"]) == 2
    assert "bootstrap-db is for development" in caplog.text
