"""Configuration: env names, development defaults, and what production refuses (no infrastructure)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from notification.settings import DEV_USERS_SERVICE_TOKEN, Settings

ENV_NAMES = (
    "APP_ENV",
    "ENVIRONMENT",
    "DATABASE_URL",
    "AMQP_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "NOTIFICATION_PORT",
    "NOTIFICATION_DATABASE_URL",
    "NOTIFICATION_USERS_URL",
    "NOTIFICATION_USERS_SERVICE_TOKEN",
    "NOTIFICATION_RETRY_DELAYS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_for_development() -> None:
    settings = Settings(environment="development")
    assert settings.port == 8003
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 1025)
    assert settings.users_url == "http://127.0.0.1:8001"
    assert settings.jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"
    assert settings.users_service_token.get_secret_value() == DEV_USERS_SERVICE_TOKEN
    assert settings.service_database_url() == "postgresql://notification_svc@127.0.0.1:5432/app"
    assert settings.service_database().schema == "notification"
    assert settings.retry_delays == [1.0, 5.0, 30.0, 120.0]
    assert "paid" not in settings.email_order_statuses
    assert {"pending", "shipped", "delivered", "cancelled"} <= set(settings.email_order_statuses)


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_PORT", "9103")
    monkeypatch.setenv("SMTP_HOST", "mail.internal")
    monkeypatch.setenv("SMTP_PORT", "2525")
    monkeypatch.setenv("NOTIFICATION_USERS_URL", "http://users:8001/")
    monkeypatch.setenv("NOTIFICATION_USERS_SERVICE_TOKEN", "s3cret-token")
    monkeypatch.setenv("NOTIFICATION_RETRY_DELAYS", "0.5, 2")
    monkeypatch.setenv("NOTIFICATION_EMAIL_ORDER_STATUSES", "shipped")
    monkeypatch.setenv("NOTIFICATION_DB_PASSWORD", "p@ss")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/app")
    settings = Settings()
    assert settings.port == 9103
    assert (settings.smtp_host, settings.smtp_port) == ("mail.internal", 2525)
    assert settings.users_url == "http://users:8001"
    assert settings.users_service_token.get_secret_value() == "s3cret-token"
    assert settings.retry_delays == [0.5, 2.0]
    assert settings.email_order_statuses == ["shipped"]
    assert settings.service_database_url() == "postgresql://notification_svc:p%40ss@db:5432/app"
    monkeypatch.setenv("NOTIFICATION_DATABASE_URL", "postgresql://custom@elsewhere/app")
    assert Settings().service_database_url() == "postgresql://custom@elsewhere/app"


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "production",
        "db_password": SecretStr("a-real-db-password"),
        "users_service_token": SecretStr("a-real-service-token-of-32-characters"),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_production_accepts_real_secrets() -> None:
    assert production().environment == "production"


@pytest.mark.parametrize(
    "overrides",
    [
        {"db_password": None},
        {"db_password": SecretStr("changeme")},
        {"users_service_token": SecretStr(DEV_USERS_SERVICE_TOKEN)},
        {"users_service_token": SecretStr("secret")},
        {"smtp_username": "mailer", "smtp_password": None},
    ],
)
def test_production_refuses_missing_or_placeholder_secrets(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        production(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"retry_delays": []},
        {"retry_delays": [1.0, 0.0]},
        {"email_backoff_base": 10.0, "email_backoff_max": 1.0},
        {"email_lease": 5.0, "smtp_timeout": 10.0},
        {"email_max_attempts": 0},
    ],
)
def test_inconsistent_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(environment="development", **overrides)  # type: ignore[arg-type]
