"""Configuration of the orders service: ``ORDERS_*`` variables plus the project-wide ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.http import pool_origin
from shared.service.settings import DEV_INTERNAL_TOKEN, DatabaseServiceSettings

SCHEMA = "orders"

# The users service accepts this on /internal/* only outside production; production refuses it here too.
DEV_USERS_SERVICE_TOKEN = DEV_INTERNAL_TOKEN

# The contract promises replays for at least a day; a shorter setting would silently break that.
MIN_IDEMPOTENCY_RETENTION = timedelta(hours=24)


def _seconds(value: Any) -> Any:
    """``3600`` from the environment means seconds; ISO 8601 durations (``PT1H``) work too."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value


class Settings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_")

    port: int = 8002

    database_schema = SCHEMA

    # Where users listens. Unset: the local users service on the launcher's USERS_PORT.
    users_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ORDERS_USERS_URL", "USERS_URL")
    )
    users_port: int = Field(default=8001, validation_alias=AliasChoices("USERS_PORT"))
    # Presented in ``X-Service-Token`` on users' /internal/* endpoints.
    users_service_token: SecretStr = SecretStr(DEV_USERS_SERVICE_TOKEN)
    # Per attempt; connect errors and 5xx answers are retried at most ``users_retries`` times.
    users_timeout: float = Field(default=2.0, gt=0)
    users_retries: int = Field(default=2, ge=0, le=5)
    users_retry_backoff: float = Field(default=0.05, ge=0)
    # Consecutive failed calls that open the breaker, and how long it stays open before a trial call.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_timeout: float = Field(default=10.0, gt=0)

    idempotency_retention: timedelta = timedelta(hours=48)
    # ORDERS_UNPAID_TTL: a pending order older than this is cancelled by expire-unpaid-orders.
    unpaid_ttl: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))

    _durations = field_validator("idempotency_retention", "unpaid_ttl", mode="before")(_seconds)

    @field_validator("idempotency_retention")
    @classmethod
    def _at_least_a_day(cls, value: timedelta) -> timedelta:
        if value < MIN_IDEMPOTENCY_RETENTION:
            raise ValueError("idempotency keys must be kept at least 24 hours")
        return value

    @model_validator(mode="after")
    def _normalise_users_url(self) -> Settings:
        if self.users_url is not None:
            # The account check's transport (shared.http) speaks plain HTTP to a host and port, no more.
            self.users_url = pool_origin(self.users_url, "ORDERS_USERS_URL")
        return self

    @property
    def users_base_url(self) -> str:
        return self.users_url or f"http://127.0.0.1:{self.users_port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.users_base_url}/.well-known/jwks.json"

    def secret_fields(self) -> dict[str, SecretStr | None]:
        secrets = super().secret_fields()
        # The development default is public knowledge, so it counts as unset.
        token = self.users_service_token
        secrets["ORDERS_USERS_SERVICE_TOKEN"] = (
            None if token.get_secret_value() == DEV_USERS_SERVICE_TOKEN else token
        )
        return secrets
