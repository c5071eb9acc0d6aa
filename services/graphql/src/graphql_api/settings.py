"""Configuration of the graphql component: ``GRAPHQL_*`` variables plus the project-wide ones."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from shared.http import pool_origin
from shared.service.settings import DEV_INTERNAL_TOKEN, BaseServiceSettings

# What the users service accepts on /internal/* outside production; production refuses it here too.
DEV_USERS_SERVICE_TOKEN = DEV_INTERNAL_TOKEN


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRAPHQL_")

    port: int = 8005

    # The services' public APIs, called with the caller's own token; realtime's /ws for subscriptions.
    users_url: str = "http://127.0.0.1:8001"
    orders_url: str = "http://127.0.0.1:8002"
    notification_url: str = "http://127.0.0.1:8003"
    realtime_url: str = "http://127.0.0.1:8004"
    # The credential for users' /internal/users?ids= (the DataLoader behind Order.user, RoomMessage.user).
    users_service_token: SecretStr = SecretStr(DEV_USERS_SERVICE_TOKEN)
    # Seconds until a service's whole answer must have arrived, and until its connection is made.
    upstream_timeout: float = Field(default=10.0, gt=0)
    connect_timeout: float = Field(default=2.0, gt=0)
    # Idle keep-alive connections kept per service.
    upstream_pool_size: int = Field(default=100, ge=1)
    # Events or room messages held for one subscriber that is not reading; one more and it is closed (4008).
    subscription_queue_size: int = Field(default=64, ge=1, le=10_000)

    @field_validator("users_url", "orders_url", "notification_url", "realtime_url")
    @classmethod
    def _pool_origin(cls, value: str, info: ValidationInfo) -> str:
        # Every service client runs on shared.http's PoolTransport, which speaks plain HTTP only.
        return pool_origin(value, f"GRAPHQL_{(info.field_name or '').upper()}")

    @property
    def introspection(self) -> bool:
        """Contract section 7: on outside production."""
        return self.environment != "production"

    def secret_fields(self) -> dict[str, SecretStr | None]:
        # The development default is public knowledge, so it counts as unset.
        token = self.users_service_token
        is_default = token.get_secret_value() == DEV_USERS_SERVICE_TOKEN
        return {"GRAPHQL_USERS_SERVICE_TOKEN": None if is_default else token}

    @property
    def service_urls(self) -> dict[str, str]:
        return {
            "users": self.users_url,
            "orders": self.orders_url,
            "notification": self.notification_url,
            "realtime": self.realtime_url,
        }
