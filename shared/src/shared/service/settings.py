"""Settings base: one env prefix per service, secrets required outside development."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:
    from shared.db.bootstrap import ServiceDatabase

Environment = Literal["development", "test", "production"]

# Values that mean "nobody chose a secret here"; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "dev", "development"})

# Service credentials (internal tokens) are at least this long in production.
MIN_TOKEN_LENGTH = 32
# The service credential users accepts on /internal/* and its clients present, outside production
# only: every component's production check refuses it like any placeholder.
DEV_INTERNAL_TOKEN = "dev-internal-token"  # noqa: S105 - a documented development default, not a secret

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
    # Each component sets its own default (contract section 1), read from ``<PREFIX>PORT``; 0 is any port.
    port: int = Field(default=0, ge=0, le=65535)
    # Seconds a component keeps serving after SIGTERM while /readyz already says 503, before it stops
    # accepting and drains: for load balancers that learn of a shutdown only by polling readiness.
    # Kubernetes removes the pod from its Service first and sleeps in preStop instead, so 0 there.
    shutdown_delay: float = Field(default=0.0, ge=0, le=60, validation_alias=AliasChoices("SHUTDOWN_DELAY"))
    # Multiplies every rate limit of the component (contract section 1): tests and benches that send
    # many clients from one address raise it.
    rate_limit_scale: float = Field(default=1.0, gt=0, validation_alias=AliasChoices("RATE_LIMIT_SCALE"))
    # Issuer and audience shared by the token issuer (users) and every verifier.
    jwt_issuer: str = Field(default="http://users", validation_alias=AliasChoices("JWT_ISSUER"))
    jwt_audience: str = Field(default="api", validation_alias=AliasChoices("JWT_AUDIENCE"))
    # How long the issuer's access tokens live: users signs with it, and every verifier refuses a
    # token claiming a longer life (plus a minute). Seconds, or an ISO 8601 duration.
    access_token_ttl: timedelta = Field(
        default=timedelta(seconds=900),
        validation_alias=AliasChoices("ACCESS_TOKEN_TTL", "USERS_ACCESS_TOKEN_TTL"),
    )

    @field_validator("access_token_ttl", mode="before")
    @classmethod
    def _ttl_seconds(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value)
        return value

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
            # A service credential is random, never typed by a person: a short one is a guessable one.
            if "TOKEN" in name and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"{name} must be at least {MIN_TOKEN_LENGTH} characters when environment=production"
                )
        # RabbitMQ's default account would let anyone who reaches the broker read and forge every event.
        # Judged only when AMQP_URL is given: components and jobs that never connect (the gateway, the
        # migrations) do not set it, and the default's 127.0.0.1 is not reachable in a cluster anyway.
        broker = urlsplit(self.amqp_url)
        weak = broker.username in (None, "", "guest") or (
            broker.password or ""
        ).lower() in PLACEHOLDER_SECRETS | {"guest"}
        if "amqp_url" in self.model_fields_set and weak:
            raise ValueError(
                "AMQP_URL must name a broker account of its own (not guest) when environment=production"
            )
        return self


class DatabaseServiceSettings(BaseServiceSettings):
    """A service that owns one schema and logs in as its own role, which owns that schema and nothing else.

    A subclass names its schema in ``database_schema``; its env prefix then gives ``<PREFIX>DB_ROLE``
    (default ``<schema>_svc``), ``<PREFIX>DB_PASSWORD``, ``<PREFIX>DB_POOL_SIZE`` and
    ``<PREFIX>DATABASE_URL``, a complete URL that replaces the role and password on ``DATABASE_URL``.
    """

    database_schema: ClassVar[str]

    db_role: str = ""
    db_password: SecretStr | None = None
    service_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # ``<PREFIX>DATABASE_URL`` is not ``<PREFIX>`` plus a field name (``database_url`` is the shared
        # ``DATABASE_URL``), so its alias, like the role's default, is known only once the prefix is.
        super().__pydantic_init_subclass__(**kwargs)
        prefix = cls.model_config.get("env_prefix", "")
        cls.model_fields["service_url"].validation_alias = AliasChoices(f"{prefix}DATABASE_URL")
        cls.model_fields["db_role"].default = f"{cls.database_schema}_svc"
        cls.model_rebuild(force=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _SharedUrlOnlyByAlias(env_settings), dotenv_settings, file_secret_settings

    def secret_fields(self) -> dict[str, SecretStr | None]:
        if self.service_url is not None:
            return {}
        return {f"{self.model_config.get('env_prefix', '')}DB_PASSWORD": self.db_password}

    def service_database_url(self) -> str:
        """Where the service connects: ``<PREFIX>DATABASE_URL``, else ``DATABASE_URL`` as the service role."""
        if self.service_url:
            return self.service_url
        return with_credentials(self.database_url, self.db_role, self._password())

    def service_database(self) -> ServiceDatabase:
        """What ``bootstrap-db`` creates for this service: its schema and the role that owns it."""
        from shared.db.bootstrap import ServiceDatabase  # it imports this module's URL helpers

        return ServiceDatabase(schema=self.database_schema, role=self.db_role, password=self._password())

    def _password(self) -> str | None:
        return self.db_password.get_secret_value() if self.db_password else None


class _SharedUrlOnlyByAlias(PydanticBaseSettingsSource):
    """The environment, except that the shared ``database_url`` is read from ``DATABASE_URL`` alone.

    With ``populate_by_name`` pydantic-settings also reads an aliased field from ``<prefix><field name>``,
    which for ``database_url`` is ``<PREFIX>DATABASE_URL``: the service role's own URL would become the
    shared one (and ``bootstrap-db`` would log in as the service role). The alias wins when both are
    set, so a ``database_url`` key in the environment's answer can only have come from the prefixed name.
    """

    def __init__(self, env: PydanticBaseSettingsSource) -> None:
        super().__init__(env.settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self._env()
        values.pop("database_url", None)
        return values


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
