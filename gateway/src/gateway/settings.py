"""Gateway settings: env prefix ``GATEWAY_``; upstream URLs also honour the launcher's ``USERS_URL`` etc."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.service.settings import BaseServiceSettings
from shared.web.middleware import MAX_BODY_BYTES


class RouteSpec(BaseModel):
    """One routing-table entry: ``/a/b`` matches exactly, ``/a/b/*`` matches ``/a/b`` and below."""

    pattern: str
    upstream: str
    public: bool = False
    # Streamed unbuffered with no read timeout (Server-Sent Events).
    stream: bool = False
    websocket: bool = False
    # The tighter rate limit its requests also count against (gateway.ratelimit), if any.
    rate_limit: Literal["auth", "stream"] | None = None


# Contract section 4. Exact public routes come before the prefix that covers them.
DEFAULT_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(pattern="/api/v1/auth/register", upstream="users", public=True, rate_limit="auth"),
    RouteSpec(pattern="/api/v1/auth/token", upstream="users", public=True, rate_limit="auth"),
    RouteSpec(pattern="/api/v1/auth/revoke", upstream="users", public=True),
    RouteSpec(pattern="/api/v1/auth/verify-email", upstream="users", public=True),
    RouteSpec(pattern="/api/v1/auth/password-reset/*", upstream="users", public=True, rate_limit="auth"),
    RouteSpec(pattern="/api/v1/auth/*", upstream="users"),
    RouteSpec(pattern="/.well-known/jwks.json", upstream="users", public=True),
    RouteSpec(pattern="/api/v1/users/*", upstream="users"),
    RouteSpec(pattern="/api/v1/orders/*", upstream="orders"),
    RouteSpec(pattern="/api/v1/notifications/*", upstream="notification"),
    RouteSpec(pattern="/api/v1/events/*", upstream="realtime", stream=True, rate_limit="stream"),
    RouteSpec(pattern="/ws", upstream="realtime", websocket=True, rate_limit="stream"),
    # Contract section 8: each service serves the admin API of its own scheduled jobs.
    *(
        RouteSpec(pattern=f"/api/v1/admin/jobs/{service}/*", upstream=service)
        for service in ("users", "orders", "notification", "realtime")
    ),
    # POST /graphql and the graphql-transport-ws WebSocket on the same path (contract section 7).
    RouteSpec(pattern="/graphql", upstream="graphql", websocket=True),
    # Contract section 6: rooms and broadcasts, served by realtime.
    RouteSpec(pattern="/api/v1/rooms/*", upstream="realtime"),
    RouteSpec(pattern="/api/v1/broadcasts", upstream="realtime"),
)


def _url(default: str, name: str) -> Any:
    return Field(default=default, validation_alias=AliasChoices(f"GATEWAY_{name}", name))


class GatewaySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    port: int = 8000
    users_url: str = _url("http://127.0.0.1:8001", "USERS_URL")
    orders_url: str = _url("http://127.0.0.1:8002", "ORDERS_URL")
    notification_url: str = _url("http://127.0.0.1:8003", "NOTIFICATION_URL")
    realtime_url: str = _url("http://127.0.0.1:8004", "REALTIME_URL")
    graphql_url: str = _url("http://127.0.0.1:8005", "GRAPHQL_URL")
    # Seconds until the upstream's whole answer (streams: its headers) must have arrived.
    upstream_timeout: float = 10.0
    connect_timeout: float = 2.0
    # Idle keep-alive connections kept per upstream (like nginx's ``keepalive N``); busy ones are not capped.
    upstream_pool_size: int = 256
    # Peers (IPs or CIDRs, e.g. a load balancer) whose X-Forwarded-For is extended instead of replaced.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = MAX_BODY_BYTES
    # Per client address (gateway.ratelimit), each times RATE_LIMIT_SCALE; needs trusted_proxies behind
    # a load balancer. Every proxied route: 0 is off; its burst defaults to ten seconds' worth.
    rate_limit_per_minute: int = Field(default=1200, ge=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    # Tighter, on top: sign-up, token and password reset (hashing, guessing) ...
    auth_rate_limit_per_minute: int = Field(default=20, ge=0)
    auth_rate_limit_burst: int = Field(default=10, ge=1)
    # ... and WebSocket/SSE handshakes (each a long-lived connection; a reconnect storm is bursty).
    stream_rate_limit_per_minute: int = Field(default=60, ge=0)
    stream_rate_limit_burst: int = Field(default=20, ge=1)
    openapi_ttl: float = 30.0
    routes: list[RouteSpec] = Field(default_factory=lambda: list(DEFAULT_ROUTES))

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        # Operators write either a JSON list or "https://a, https://b".
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("users_url", "orders_url", "notification_url", "realtime_url", "graphql_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _routes_name_known_upstreams(self) -> GatewaySettings:
        unknown = {route.upstream for route in self.routes} - set(self.upstream_urls)
        if unknown:
            raise ValueError(f"routes name unknown upstreams: {', '.join(sorted(unknown))}")
        return self

    @property
    def upstream_urls(self) -> dict[str, str]:
        return {
            "users": self.users_url,
            "orders": self.orders_url,
            "notification": self.notification_url,
            "realtime": self.realtime_url,
            "graphql": self.graphql_url,
        }

    @property
    def rate_limit_capacity(self) -> int:
        return self.rate_limit_burst or max(1, self.rate_limit_per_minute // 6)

    def rate_limits(self) -> dict[str, tuple[float, int]]:
        """(tokens a second, burst) per limit, ``RATE_LIMIT_SCALE`` applied; a limit set to 0 is absent."""
        scale = self.rate_limit_scale
        limits = {
            "default": (self.rate_limit_per_minute, self.rate_limit_capacity),
            "auth": (self.auth_rate_limit_per_minute, self.auth_rate_limit_burst),
            "stream": (self.stream_rate_limit_per_minute, self.stream_rate_limit_burst),
        }
        return {
            name: (per_minute * scale / 60, max(1, round(burst * scale)))
            for name, (per_minute, burst) in limits.items()
            if per_minute
        }

    @property
    def jwks_url(self) -> str:
        return self.users_url + "/.well-known/jwks.json"
