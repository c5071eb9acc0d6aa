"""Configuration of the users service: ``USERS_*`` variables plus the project-wide ones."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.service.settings import DEV_INTERNAL_TOKEN, DatabaseServiceSettings

SCHEMA = "users"

# The admin account can do anything: its password must not be the first guess of anyone.
MIN_ADMIN_PASSWORD_LENGTH = 12
COMMON_ADMIN_PASSWORDS = frozenset(
    {
        "admin",
        "administrator",
        "admin123",
        "admin1234",
        "password",
        "password123",
        "changeme",
        "root",
        "toor",
        "letmein",
        "qwerty",
        "123456789012",
        "adminadminadmin",
        "administrator1",
    }
)


def is_weak_admin_password(password: str, email: str | None) -> bool:
    folded = password.strip().casefold()
    if len(password) < MIN_ADMIN_PASSWORD_LENGTH or folded in COMMON_ADMIN_PASSWORDS or len(set(folded)) < 4:
        return True
    return email is not None and folded in {email.casefold(), email.split("@")[0].casefold()}


Argon2Profile = Literal["RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST"]


def _split_commas(value: Any) -> Any:
    """``a,b`` from the environment becomes ``["a", "b"]``; lists given in code pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _seconds(value: Any) -> Any:
    """``900`` from the environment means seconds; ISO 8601 durations (``PT15M``) work too."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value


class Settings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="USERS_")

    port: int = 8001

    database_schema = SCHEMA

    # Ed25519 private key (PEM). Unset outside production: an ephemeral key is generated at start.
    jwt_private_key_file: Path | None = None
    # Public (or retired private) keys still published in the JWKS while a rotation completes.
    jwt_extra_public_key_files: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    refresh_token_ttl: timedelta = timedelta(days=30)

    # Credentials other services present in ``X-Service-Token`` on /internal/*.
    internal_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    admin_email: str | None = Field(
        default=None, validation_alias=AliasChoices("ADMIN_EMAIL", "USERS_ADMIN_EMAIL")
    )
    admin_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ADMIN_PASSWORD", "USERS_ADMIN_PASSWORD")
    )
    # An existing account with ADMIN_EMAIL that is not an admin yet is promoted only when this is set:
    # otherwise whoever registers that address before the first start would become the admin.
    admin_promote_existing: bool = Field(
        default=False, validation_alias=AliasChoices("ADMIN_PROMOTE_EXISTING", "USERS_ADMIN_PROMOTE_EXISTING")
    )

    # Failed logins tolerated per window, counted in Postgres so every replica sees the same numbers.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_account_window: timedelta = timedelta(minutes=15)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    login_ip_window: timedelta = timedelta(minutes=15)
    # Peers whose X-Forwarded-For is believed (the gateway, a local load balancer).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1", "::1"])

    # CHEAPEST exists for tests only; production refuses it.
    argon2_profile: Argon2Profile = "RFC_9106_LOW_MEMORY"
    # Memory argon2 may hold at once: budget / the profile's memory cost (64 MiB) hashes run together,
    # the rest wait. Keep it well under the container's memory limit.
    hash_memory_budget_mib: int = Field(default=256, ge=1)
    # Sign-ups per client address and replica: a burst, refilled at a rate (times RATE_LIMIT_SCALE).
    register_per_minute: float = Field(default=10, gt=0)
    register_burst: int = Field(default=10, ge=1)

    _split = field_validator(
        "jwt_extra_public_key_files", "internal_tokens", "trusted_proxies", mode="before"
    )(_split_commas)
    _durations = field_validator(
        "refresh_token_ttl", "login_account_window", "login_ip_window", mode="before"
    )(_seconds)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)
        return value

    @field_validator("admin_email")
    @classmethod
    def _valid_admin_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            validate_email(value.strip(), check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"ADMIN_EMAIL is not a valid e-mail address: {exc}") from exc
        return value.strip()

    @model_validator(mode="after")
    def _production_requirements(self) -> Settings:
        if self.environment == "production":
            if self.jwt_private_key_file is None:
                raise ValueError("USERS_JWT_PRIVATE_KEY_FILE must be set when environment=production")
            if self.argon2_profile == "CHEAPEST":
                raise ValueError("USERS_ARGON2_PROFILE=CHEAPEST is for tests only")
            if self.admin_password is not None and is_weak_admin_password(
                self.admin_password.get_secret_value(), self.admin_email
            ):
                raise ValueError(
                    "ADMIN_PASSWORD is too weak for production: at least"
                    f" {MIN_ADMIN_PASSWORD_LENGTH} characters, not a common password, not the e-mail address"
                )
        elif not self.internal_tokens:
            self.internal_tokens = [SecretStr(DEV_INTERNAL_TOKEN)]
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")
        return self

    def secret_fields(self) -> dict[str, SecretStr | None]:
        secrets = super().secret_fields()
        if not self.internal_tokens:
            secrets["USERS_INTERNAL_TOKENS"] = None
        for index, token in enumerate(self.internal_tokens):
            # The development default is public knowledge, so it counts as unset.
            is_default = token.get_secret_value() == DEV_INTERNAL_TOKEN
            secrets[f"USERS_INTERNAL_TOKENS[{index}]"] = None if is_default else token
        if self.admin_password is not None:
            secrets["ADMIN_PASSWORD"] = self.admin_password
        return secrets
