"""Configuration of the realtime service: ``REALTIME_*`` variables plus the project-wide ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.service.settings import DatabaseServiceSettings

SCHEMA = "realtime"
SERVICE = "realtime"

# Contract, section 4: a ping at least every 30 s on /ws, a comment at least every 15 s on SSE.
MAX_WS_PING_INTERVAL = 30.0
MAX_SSE_PING_INTERVAL = 15.0


def _seconds(value: Any) -> Any:
    """``3600`` from the environment means seconds; ISO 8601 durations (``PT1H``) work too."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value


class Settings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REALTIME_")

    port: int = 8004

    database_schema = SCHEMA

    # Where the users service publishes its JWKS. Unset: the local users service on USERS_PORT.
    users_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REALTIME_USERS_URL", "USERS_URL")
    )
    users_port: int = Field(default=8001, validation_alias=AliasChoices("USERS_PORT"))

    # Seconds between {"type": "ping"} frames on /ws and comment lines on the SSE stream.
    ping_interval: float = Field(default=20.0, gt=0, le=MAX_WS_PING_INTERVAL)
    sse_ping_interval: float = Field(default=10.0, gt=0, le=MAX_SSE_PING_INTERVAL)
    # Frames waiting for one connection; a client further behind than this is closed with 4008.
    send_queue_size: int = Field(default=256, ge=1, le=100_000)
    # An SSE write that does not complete in this time ends the stream (the client is not reading).
    sse_send_timeout: float = Field(default=10.0, gt=0)
    # Open WebSocket and SSE connections per user across all replicas (contract section 4), each held
    # as a lease its replica renews; a replica that dies leaves its leases to lapse after the TTL.
    max_connections_per_user: int = Field(default=10, ge=1)
    connection_lease_ttl: float = Field(default=30.0, ge=3)
    # Largest message a client may send (pong and refresh frames are small): keeps read buffers small.
    ws_max_message_size: int = Field(default=16 * 1024, ge=1024)
    # Protocol-level keepalive (WebSocket ping/pong control frames) that finds dead peers.
    ws_keepalive_interval: float = Field(default=20.0, gt=0)
    ws_keepalive_timeout: float = Field(default=20.0, gt=0)

    # Retention of each user's stream: events older than this, or beyond this many per user, go.
    retention_max_age: timedelta = timedelta(days=7)
    retention_max_events: int = Field(default=1000, ge=1)

    # Rooms (contract section 6). Retention of each room's history, like the user streams'.
    room_retention_max_age: timedelta = timedelta(days=7)
    room_retention_max_messages: int = Field(default=1000, ge=1)
    # Messages a join with ``since`` replays at most; further behind, it gets the newest ones and
    # ``recovered: false`` (the client pages the rest over HTTP). At most half the send queue (see
    # ``recovery_limit``), so a join's replay cannot by itself close its connection with 4008.
    room_recovery_limit: int = Field(default=100, ge=1)
    max_rooms_per_connection: int = Field(default=50, ge=1)
    say_rate: float = Field(default=5.0, gt=0)
    say_burst: float = Field(default=10.0, ge=1)
    # Presence: each replica renews its heartbeat row this often; a replica silent for
    # ``presence_ttl`` seconds is dropped (its members leave) by the next sweep of another one.
    # How room notices reach the other replicas: "broker" (a RabbitMQ fan-out exchange, after the
    # commit) or "notify" (Postgres NOTIFY in the storing transaction). README: why broker is the default.
    room_fanout: Literal["notify", "broker"] = "broker"
    presence_heartbeat: float = Field(default=5.0, gt=0)
    presence_ttl: float = Field(default=15.0, gt=0)

    consumer_prefetch: int = Field(default=64, ge=1)
    # Events stored per transaction. 1 by default: a batch reaches a user's connections as one burst,
    # which a client that keeps up could take for falling behind; larger batches store faster and must
    # stay at most half of send_queue_size.
    consumer_batch_size: int = Field(default=1, ge=1)
    retry_delays: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0])

    _durations = field_validator("retention_max_age", "room_retention_max_age", mode="before")(_seconds)

    @model_validator(mode="after")
    def _rooms_fit(self) -> Settings:
        if (
            self.presence_heartbeat * 2 > self.presence_ttl
            or self.presence_ttl + self.presence_heartbeat > 30
        ):
            raise ValueError(
                "REALTIME_PRESENCE_TTL must be at least twice REALTIME_PRESENCE_HEARTBEAT, and the two "
                "together at most 30 s (contract: a dead replica's members go within 30 s)"
            )
        return self

    @model_validator(mode="after")
    def _batch_fits_the_queue(self) -> Settings:
        if self.consumer_batch_size * 2 > self.send_queue_size:
            raise ValueError("REALTIME_CONSUMER_BATCH_SIZE must be at most half of REALTIME_SEND_QUEUE_SIZE")
        return self

    @model_validator(mode="after")
    def _normalise_users_url(self) -> Settings:
        if self.users_url is not None:
            self.users_url = self.users_url.rstrip("/")
        return self

    @property
    def recovery_limit(self) -> int:
        return max(1, min(self.room_recovery_limit, self.send_queue_size // 2))

    @property
    def jwks_url(self) -> str:
        base = self.users_url or f"http://127.0.0.1:{self.users_port}"
        return f"{base}/.well-known/jwks.json"
