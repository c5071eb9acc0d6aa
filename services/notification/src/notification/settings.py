"""Configuration of the notification service: ``NOTIFICATION_*`` variables plus the project-wide ones."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.service.settings import DEV_INTERNAL_TOKEN, DatabaseServiceSettings

SCHEMA = "notification"
SERVICE = "notification"

# What the users service accepts on /internal/* outside production; production refuses it here too.
DEV_USERS_SERVICE_TOKEN = DEV_INTERNAL_TOKEN

# Order statuses that also send an e-mail; ``pending`` is the confirmation sent for order.created.
# ``paid`` is left out: the customer has just done that themselves and sees it in the app.
DEFAULT_EMAIL_ORDER_STATUSES = ("pending", "shipped", "delivered", "cancelled")


def _split_commas(value: Any) -> Any:
    """``a,b`` from the environment becomes ``["a", "b"]``; sequences given in code pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_")

    port: int = 8003

    database_schema = SCHEMA

    # The users service: JWKS for token checks, /internal/users/{id} for contacts we have not seen.
    users_url: str = "http://127.0.0.1:8001"
    users_service_token: SecretStr = SecretStr(DEV_USERS_SERVICE_TOKEN)
    users_timeout: float = Field(default=5.0, gt=0)

    # Project-wide names, no prefix (contract section 1).
    smtp_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("SMTP_HOST"))
    smtp_port: int = Field(default=1025, validation_alias=AliasChoices("SMTP_PORT"))
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=10.0, gt=0)
    mail_from: str = "Notifications <no-reply@example.com>"
    # Where links in e-mails point (the gateway, or the web front end in front of it).
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("PUBLIC_URL", "NOTIFICATION_PUBLIC_URL"),
    )

    # E-mail sender: attempts before a message is recorded as failed, and the backoff between them.
    email_max_attempts: int = Field(default=8, ge=1)
    email_backoff_base: float = Field(default=5.0, gt=0)
    email_backoff_max: float = Field(default=900.0, gt=0)
    email_poll_interval: float = Field(default=1.0, gt=0)
    # How long a claimed message stays invisible to other replicas while it is being sent.
    email_lease: float = Field(default=60.0, gt=0)
    email_batch_size: int = Field(default=20, ge=1, le=500)
    email_order_statuses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_EMAIL_ORDER_STATUSES)
    )

    # Consumer: delay before each retry of a failing event; after the last one it goes to the DLQ.
    # Changing them needs the old ``notification.retry.*`` queues deleted (their TTL is fixed).
    retry_delays: Annotated[list[float], NoDecode] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0])
    consumer_prefetch: int = Field(default=32, ge=1)

    _split = field_validator("email_order_statuses", "retry_delays", mode="before")(_split_commas)

    @field_validator("retry_delays")
    @classmethod
    def _positive_delays(cls, value: list[float]) -> list[float]:
        if not value or any(delay <= 0 for delay in value):
            raise ValueError("retry delays must be positive seconds, at least one")
        return value

    @field_validator("users_url", "public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent_timings(self) -> Settings:
        if self.email_backoff_max < self.email_backoff_base:
            raise ValueError(
                "NOTIFICATION_EMAIL_BACKOFF_MAX must not be below NOTIFICATION_EMAIL_BACKOFF_BASE"
            )
        # A send is cut off at half the lease, so no other replica can claim a message still in flight.
        if self.email_lease < 2 * self.smtp_timeout:
            raise ValueError("NOTIFICATION_EMAIL_LEASE must be at least twice NOTIFICATION_SMTP_TIMEOUT")
        return self

    def secret_fields(self) -> dict[str, SecretStr | None]:
        secrets = super().secret_fields()
        # The development default is public knowledge, so it counts as unset.
        token = self.users_service_token
        is_default = token.get_secret_value() == DEV_USERS_SERVICE_TOKEN
        secrets["NOTIFICATION_USERS_SERVICE_TOKEN"] = None if is_default else token
        if self.smtp_username is not None:
            secrets["NOTIFICATION_SMTP_PASSWORD"] = self.smtp_password
        return secrets

    @property
    def jwks_url(self) -> str:
        return f"{self.users_url}/.well-known/jwks.json"
