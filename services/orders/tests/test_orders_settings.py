"""Configuration: env names, development defaults, and what production refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from orders.settings import DEV_USERS_SERVICE_TOKEN, Settings

ENV = (
    "APP_ENV",
    "ENVIRONMENT",
    "DATABASE_URL",
    "USERS_PORT",
    "USERS_URL",
    "ORDERS_USERS_URL",
    "ORDERS_PORT",
    "ORDERS_USERS_SERVICE_TOKEN",
    "ORDERS_DB_PASSWORD",
    "ORDERS_DATABASE_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_for_development() -> None:
    settings = Settings(environment="development")
    assert settings.port == 8002
    assert settings.db_role == "orders_svc"
    assert settings.service_database_url() == "postgresql://orders_svc@127.0.0.1:5432/app"
    assert settings.service_database().schema == "orders"
    assert settings.users_base_url == "http://127.0.0.1:8001"
    assert settings.jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"
    assert settings.users_service_token.get_secret_value() == DEV_USERS_SERVICE_TOKEN
    assert settings.idempotency_retention >= timedelta(hours=24)


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_PORT", "9102")
    monkeypatch.setenv("USERS_PORT", "9101")
    monkeypatch.setenv("ORDERS_USERS_SERVICE_TOKEN", "tok")
    monkeypatch.setenv("ORDERS_IDEMPOTENCY_RETENTION", "172800")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/app")
    monkeypatch.setenv("ORDERS_DB_PASSWORD", "p@ss")
    settings = Settings()
    assert settings.port == 9102
    # The launcher moved users to another port: orders follows it when no URL is given.
    assert settings.users_base_url == "http://127.0.0.1:9101"
    assert settings.users_service_token.get_secret_value() == "tok"
    assert settings.idempotency_retention == timedelta(days=2)
    assert settings.service_database_url() == "postgresql://orders_svc:p%40ss@db:5432/app"
    monkeypatch.setenv("ORDERS_USERS_URL", "http://users:8001/")
    assert Settings().users_base_url == "http://users:8001"


@pytest.mark.parametrize("url", ["https://users:8001", "http://users:8001/prefix", "users:8001"])
def test_a_users_url_the_account_check_cannot_reach_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="http://host:port"):
        Settings(users_url=url)


def test_retention_below_a_day_is_refused() -> None:
    with pytest.raises(ValidationError, match="24 hours"):
        Settings(idempotency_retention=timedelta(hours=23))


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "production",
        "db_password": SecretStr("a-real-db-password"),
        "users_service_token": SecretStr("a-real-service-token-of-32-characters"),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_production_with_real_secrets_starts() -> None:
    assert production().environment == "production"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"users_service_token": SecretStr(DEV_USERS_SERVICE_TOKEN)}, "ORDERS_USERS_SERVICE_TOKEN"),
        ({"users_service_token": SecretStr("changeme")}, "ORDERS_USERS_SERVICE_TOKEN"),
        ({"db_password": None}, "ORDERS_DB_PASSWORD"),
    ],
)
def test_production_refuses_placeholder_secrets(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        production(**overrides)
