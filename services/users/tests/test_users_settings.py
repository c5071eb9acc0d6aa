"""Configuration: env names, development defaults, and what production refuses (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.service.settings import DEV_INTERNAL_TOKEN
from users.settings import Settings

PROD_KEY = Path("/run/secrets/jwt.pem")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_EMAIL", "ADMIN_PASSWORD", "APP_ENV", "ENVIRONMENT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_for_development() -> None:
    settings = Settings(environment="development")
    assert settings.port == 8001
    assert settings.db_role == "users_svc"
    assert settings.access_token_ttl.total_seconds() == 900
    assert settings.refresh_token_ttl.days == 30
    assert [t.get_secret_value() for t in settings.internal_tokens] == [DEV_INTERNAL_TOKEN]
    assert settings.service_database_url() == "postgresql://users_svc@127.0.0.1:5432/app"
    assert settings.service_database().schema == "users"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERS_PORT", "9101")
    monkeypatch.setenv("USERS_DB_PASSWORD", "p@ss word")
    monkeypatch.setenv("USERS_INTERNAL_TOKENS", "one, two")
    monkeypatch.setenv("USERS_TRUSTED_PROXIES", "10.0.0.0/8,::1")
    monkeypatch.setenv("USERS_ACCESS_TOKEN_TTL", "300")
    monkeypatch.setenv("USERS_LOGIN_ACCOUNT_WINDOW", "PT10M")
    monkeypatch.setenv("ADMIN_EMAIL", "root@example.com")
    monkeypatch.setenv("ADMIN_PASSWORD", "root password")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@db:5432/app")
    settings = Settings()
    assert settings.port == 9101
    assert [t.get_secret_value() for t in settings.internal_tokens] == ["one", "two"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1"]
    assert settings.access_token_ttl.total_seconds() == 300
    assert settings.login_account_window.total_seconds() == 600
    assert settings.admin_email == "root@example.com"
    assert settings.service_database_url() == "postgresql://users_svc:p%40ss%20word@db:5432/app"
    monkeypatch.setenv("USERS_DATABASE_URL", "postgresql://custom@elsewhere/app")
    assert Settings().service_database_url() == "postgresql://custom@elsewhere/app"


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "production",
        "jwt_private_key_file": PROD_KEY,
        "db_password": SecretStr("a-real-db-password"),
        "internal_tokens": [SecretStr("a-real-service-token-of-32-characters")],
        "amqp_url": "amqp://users:a-broker-password@rabbitmq:5672/",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_production_accepts_real_secrets() -> None:
    assert production().environment == "production"


@pytest.mark.parametrize(
    "overrides",
    [
        {"jwt_private_key_file": None},
        {"db_password": None},
        {"db_password": SecretStr("changeme")},
        {"internal_tokens": []},
        {"internal_tokens": [SecretStr(DEV_INTERNAL_TOKEN)]},
        {"argon2_profile": "CHEAPEST"},
        {"admin_email": "root@example.com", "admin_password": SecretStr("password")},
        {"admin_email": "root@example.com", "admin_password": SecretStr("admin")},
        {"admin_email": "root@example.com", "admin_password": SecretStr("Administrator")},
        {"admin_email": "root@example.com", "admin_password": SecretStr("root@example.com")},
        {"admin_email": "root@example.com", "admin_password": SecretStr("aaaaaaaaaaaaaaaa")},
        {"internal_tokens": [SecretStr("x")]},
        {"internal_tokens": [SecretStr("a-real-service-token-of-32-characters"), SecretStr("short-one")]},
        {"amqp_url": "amqp://guest:guest@rabbitmq:5672/"},
        {"amqp_url": "amqp://guest:something-else@rabbitmq:5672/"},
        {"amqp_url": "amqp://users:guest@rabbitmq:5672/"},
        {"amqp_url": "amqp://rabbitmq:5672/"},
    ],
)
def test_production_refuses_missing_or_placeholder_secrets(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        production(**overrides)


def test_production_accepts_a_strong_admin_password() -> None:
    settings = production(
        admin_email="root@example.com", admin_password=SecretStr("correct horse battery staple")
    )
    assert settings.admin_password is not None


def test_admin_email_and_password_go_together() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="development", admin_email="root@example.com", admin_password=None)


def test_admin_email_must_be_an_email() -> None:
    with pytest.raises(ValidationError, match="ADMIN_EMAIL"):
        Settings(environment="development", admin_email="root", admin_password=SecretStr("x" * 12))
