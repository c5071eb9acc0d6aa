"""Settings base: one env prefix per service, secrets required outside development."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]

# Values that mean "nobody chose a secret here"; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "dev", "development"})

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/app"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class BaseServiceSettings(BaseSettings):
    """Fields every component shares; subclasses set ``env_prefix`` and add their own."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None, populate_by_name=True)

    environment: Environment = Field(
        default="development", validation_alias=AliasChoices("APP_ENV", "ENVIRONMENT")
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    log_format: Literal["json", "console"] = Field(
        default="json", validation_alias=AliasChoices("LOG_FORMAT")
    )
    database_url: str = Field(default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL"))
    amqp_url: str = Field(default=DEFAULT_AMQP_URL, validation_alias=AliasChoices("AMQP_URL"))
    host: str = "127.0.0.1"
    # Seconds a component keeps serving after SIGTERM while /readyz already says 503, before it stops
    # accepting and drains: for load balancers that learn of a shutdown only by polling readiness.
    # Kubernetes removes the pod from its Service first and sleeps in preStop instead, so 0 there.
    shutdown_delay: float = Field(default=0.0, ge=0, le=60, validation_alias=AliasChoices("SHUTDOWN_DELAY"))
    # Issuer and audience shared by the token issuer (users) and every verifier.
    jwt_issuer: str = Field(default="http://users", validation_alias=AliasChoices("JWT_ISSUER"))
    jwt_audience: str = Field(default="api", validation_alias=AliasChoices("JWT_AUDIENCE"))

    @property
    def is_development(self) -> bool:
        return self.environment != "production"

    def secret_fields(self) -> dict[str, SecretStr | None]:
        """Secrets a subclass declares; each must be set to a real value in production."""
        return {}

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> BaseServiceSettings:
        if self.environment != "production":
            return self
        for name, value in self.secret_fields().items():
            if value is None or value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{name} must be set to a real secret when environment=production")
        return self


def with_credentials(url: str, user: str, password: str | None) -> str:
    """Return ``url`` with its user (and password) replaced: each service logs in as its own role."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(user, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def asyncpg_url(url: str) -> str:
    """SQLAlchemy URL for the asyncpg driver from a plain ``postgresql://`` URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")
