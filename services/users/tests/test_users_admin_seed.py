"""ADMIN_EMAIL / ADMIN_PASSWORD: after any start the admin exists, is active and can log in."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import jwt
import pytest
from aio_pika.abc import AbstractQueue
from pydantic import SecretStr

from users.app import create_app

from .test_users_verification import mails, next_mail

__all__ = ["mails"]  # a fixture, used by name

pytestmark = pytest.mark.integration

ADMIN = {"admin_email": "boss@example.com", "admin_password": SecretStr("boss password")}


async def admins(admin_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(admin_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT email, roles, is_active FROM users.users WHERE 'admin' = ANY(roles)"
        )
        return rows
    finally:
        await conn.close()


async def test_admin_is_seeded_and_can_log_in(run_app: Any) -> None:
    async with run_app(**ADMIN) as (_, client):
        form = {"grant_type": "password", "username": "boss@example.com", "password": "boss password"}
        response = await client.post("/api/v1/auth/token", data=form)
        assert response.status_code == 200
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["roles"] == ["user", "admin"]


async def test_seeding_is_idempotent_and_repairs_the_account(run_app: Any, clean_db: Any) -> None:
    async with run_app(**ADMIN):
        pass
    conn = await asyncpg.connect(clean_db.admin_url)
    try:
        # Still an admin (so no promotion is involved), but deactivated, missing a role, password lost.
        await conn.execute("UPDATE users.users SET is_active = false, roles = '{admin}', password_hash = 'x'")
    finally:
        await conn.close()
    async with run_app(**ADMIN) as (_, client):
        form = {"grant_type": "password", "username": "BOSS@example.com", "password": "boss password"}
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 200
    rows = await admins(clean_db.admin_url)
    assert [(r["email"], r["roles"], r["is_active"]) for r in rows] == [
        ("boss@example.com", ["user", "admin"], True)
    ]


async def test_replicas_starting_together_create_one_admin(make_settings: Any, clean_db: Any) -> None:
    apps = [create_app(make_settings(**ADMIN)) for _ in range(4)]

    async def start(app: Any) -> None:
        async with app.router.lifespan_context(app):
            pass

    await asyncio.gather(*(start(app) for app in apps))
    assert len(await admins(clean_db.admin_url)) == 1


async def register_and_sign_in(run_app: Any) -> str:
    """Someone signs up with the admin's address before the operator's first start; their refresh token."""
    async with run_app() as (_, client):
        await client.post(
            "/api/v1/auth/register",
            json={"email": "Boss@Example.com", "password": "an old password", "full_name": "Boss"},
        )
        form = {"grant_type": "password", "username": "boss@example.com", "password": "an old password"}
        response = await client.post("/api/v1/auth/token", data=form)
        assert response.status_code == 200
        refresh: str = response.json()["refresh_token"]
        return refresh


async def test_an_existing_user_is_not_promoted_by_default(
    run_app: Any, clean_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refresh = await register_and_sign_in(run_app)
    async with run_app(**ADMIN) as (_, client):
        form = {"grant_type": "password", "username": "boss@example.com", "password": "boss password"}
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 400
        again = {"grant_type": "refresh_token", "refresh_token": refresh}
        claims = jwt.decode(
            (await client.post("/api/v1/auth/token", data=again)).json()["access_token"],
            options={"verify_signature": False},
        )
        assert claims["roles"] == ["user"]
    assert await admins(clean_db.admin_url) == []
    assert any(
        r.levelname == "WARNING" and "ADMIN_PROMOTE_EXISTING" in r.getMessage() for r in caplog.records
    )


async def test_an_existing_user_is_promoted_when_asked_and_loses_its_sessions(
    run_app: Any, clean_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refresh = await register_and_sign_in(run_app)
    async with run_app(**ADMIN, admin_promote_existing=True) as (_, client):
        form = {"grant_type": "password", "username": "boss@example.com", "password": "boss password"}
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 200
        old = {"grant_type": "password", "username": "boss@example.com", "password": "an old password"}
        assert (await client.post("/api/v1/auth/token", data=old)).status_code == 400
        again = await client.post(
            "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
    rows = await admins(clean_db.admin_url)
    assert [(r["email"], r["roles"]) for r in rows] == [("Boss@Example.com", ["user", "admin"])]
    promoted = [r for r in caplog.records if r.getMessage() == "admin account updated"]
    assert promoted
    assert promoted[-1].levelname == "WARNING"


async def test_a_promotion_spends_the_reset_links_of_whoever_held_the_account(
    run_app: Any, mails: AbstractQueue
) -> None:
    # The squatter asks for a reset link before the operator promotes the account...
    await register_and_sign_in(run_app)
    await next_mail(mails)  # the welcome e-mail
    async with run_app() as (_, client):
        asked = await client.post("/api/v1/auth/password-reset", json={"email": "boss@example.com"})
        assert asked.status_code == 202
    link = await next_mail(mails)
    # ...and must not be able to choose the admin's password with it afterwards.
    async with run_app(**ADMIN, admin_promote_existing=True) as (_, client):
        confirm = {"token": link.data.token, "new_password": "the squatter's choice"}
        assert (await client.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 400
        form = {"grant_type": "password", "username": "boss@example.com", "password": "boss password"}
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 200
