"""Fixtures of the users service: its schema in the run's throwaway database, and the app over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from shared.db.bootstrap import ServiceDatabase, ensure_service_schema
from shared.db.migrations import upgrade
from shared.service.settings import with_credentials
from users.app import create_app
from users.cli import migrations_dir
from users.settings import SCHEMA, Settings

INTERNAL_TOKEN = "internal-token-for-tests"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class UsersDb:
    admin_url: str
    service_url: str


def role_password(admin_url: str, value: str) -> str | None:
    """A password only where the server asks for one (a container); a trust-auth server needs none,
    and leaving it unset keeps this run from changing the password of a developer's role."""
    return value if urlsplit(admin_url).password else None


@pytest.fixture(scope="session")
async def users_db(test_database_url: str) -> UsersDb:
    password = role_password(test_database_url, "users-svc-test")
    await ensure_service_schema(test_database_url, ServiceDatabase(SCHEMA, "users_svc", password))
    service_url = with_credentials(test_database_url, "users_svc", password)
    # Alembic's env.py calls asyncio.run itself, so it runs off this loop.
    await asyncio.to_thread(upgrade, migrations_dir(), service_url, SCHEMA)
    return UsersDb(admin_url=test_database_url, service_url=service_url)


async def truncate(db: UsersDb) -> None:
    conn = await asyncpg.connect(db.admin_url)
    try:
        await conn.execute(
            "TRUNCATE users.users, users.refresh_tokens, users.login_failures, users.outbox,"
            " users.jobs, users.job_runs RESTART IDENTITY CASCADE"
        )
    finally:
        await conn.close()


@pytest.fixture
async def clean_db(users_db: UsersDb) -> AsyncIterator[UsersDb]:
    """Every integration test starts and leaves the users tables empty."""
    yield users_db
    await truncate(users_db)


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(clean_db: UsersDb, test_amqp_url: str) -> MakeSettings:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": clean_db.admin_url,
            "amqp_url": test_amqp_url,
            "service_url": clean_db.service_url,
            "argon2_profile": "CHEAPEST",
            # Every test client shares one address: sign-ups are not what most tests are about.
            "rate_limit_scale": 1000,
            "admin_email": None,
            "admin_password": None,
            "internal_tokens": [SecretStr(INTERNAL_TOKEN)],
            "jwt_private_key_file": None,
            "jwt_extra_public_key_files": [],
        }
        values.update(overrides)
        return Settings(**values)

    return make


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://users.test") as client:
            yield app, client


RunApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
def run_app(make_settings: MakeSettings) -> RunApp:
    """``async with run_app(**settings_overrides) as (app, client)``: an app of one's own."""

    def run(**overrides: Any) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
        return serving(make_settings(**overrides))

    return run


@pytest.fixture
async def client(run_app: RunApp) -> AsyncIterator[httpx.AsyncClient]:
    async with run_app() as (_, client):
        yield client


class Api:
    """The few calls most tests repeat, spelled as a client would make them."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def register(
        self, email: str, password: str = PASSWORD, full_name: str = "Test User"
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "full_name": full_name}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def login(self, email: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
            headers=headers,
        )

    async def tokens(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.login(email, password)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def bearer(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await self.tokens(email, password))['access_token']}"}


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
async def admin_api(run_app: RunApp) -> AsyncIterator[tuple[Api, dict[str, str]]]:
    """A client of an app seeded with an admin, and that admin's Authorization header."""
    async with run_app(admin_email="root@example.com", admin_password=SecretStr("admin-password")) as (
        _,
        client,
    ):
        api = Api(client)
        yield api, await api.bearer("root@example.com", "admin-password")
