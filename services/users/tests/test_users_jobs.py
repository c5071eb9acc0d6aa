"""The users jobs: purges that take only what has expired, steered through the admin API."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from shared.testing.jobs import AdminJobs

pytestmark = pytest.mark.integration

JOBS = "/api/v1/admin/jobs/users"


async def test_the_users_jobs_are_listed_for_admins_only(admin_api: Any) -> None:
    api, admin = admin_api
    listed = await api.client.get(JOBS, headers=admin)
    assert listed.status_code == 200
    assert {(j["name"], j["schedule"]) for j in listed.json()["items"]} == {
        ("purge-refresh-tokens", "17 3 * * *"),
        ("purge-verification-tokens", "23 3 * * *"),
        ("purge-login-failures", "*/15 * * * *"),
        ("purge-outbox", "*/10 * * * *"),
    }
    await api.register("someone@example.com")
    assert (await api.client.get(JOBS, headers=await api.bearer("someone@example.com"))).status_code == 403


async def test_purges_take_only_what_has_expired(admin_api: Any, clean_db: Any) -> None:
    api, admin = admin_api
    jobs = AdminJobs(api.client, admin, "users")
    # Held, the app's own scheduler (purge-login-failures every 15 minutes) cannot take the rows first.
    await jobs.hold("purge-refresh-tokens")
    await jobs.hold("purge-login-failures")
    await api.register("kept@example.com")
    for _ in range(4):
        await api.tokens("kept@example.com")
    for _ in range(2):
        assert (await api.login("kept@example.com", "wrong-password")).status_code == 400
    conn = await asyncpg.connect(clean_db.admin_url)
    try:
        ids = [
            row["id"]
            for row in await conn.fetch(
                "SELECT t.id FROM users.refresh_tokens t JOIN users.users u ON u.id = t.user_id"
                " WHERE u.email = 'kept@example.com' ORDER BY t.created_at, t.id"
            )
        ]
        expired, revoked_long_ago, revoked_yesterday, live = ids
        ago = "UPDATE users.refresh_tokens SET {} = now() - interval '{}' WHERE id = $1"
        await conn.execute(ago.format("expires_at", "8 days"), expired)
        await conn.execute(ago.format("revoked_at", "8 days"), revoked_long_ago)
        await conn.execute(ago.format("revoked_at", "1 day"), revoked_yesterday)
        await conn.execute(
            "UPDATE users.login_failures SET created_at = now() - interval '1 hour'"
            " WHERE id = (SELECT min(id) FROM users.login_failures)"
        )
        tokens = await jobs.run("purge-refresh-tokens")
        failures = await jobs.run("purge-login-failures")
        left = {row["id"] for row in await conn.fetch("SELECT id FROM users.refresh_tokens")}
        left_failures = await conn.fetchval("SELECT count(*) FROM users.login_failures")
    finally:
        await conn.close()
    assert tokens["detail"] == "deleted 2 rows of refresh_tokens"
    assert left >= {revoked_yesterday, live}
    assert not left & {expired, revoked_long_ago}
    assert failures["detail"] == "deleted 1 rows of login_failures"
    assert left_failures == 1


async def test_the_verification_token_purge_takes_only_spent_or_expired_links(
    admin_api: Any, clean_db: Any
) -> None:
    api, admin = admin_api
    jobs = AdminJobs(api.client, admin, "users")
    await jobs.hold("purge-verification-tokens")
    for email in ("old-link@example.com", "new-link@example.com", "used-link@example.com"):
        await api.register(email)
    conn = await asyncpg.connect(clean_db.admin_url)
    try:
        by_email = (
            "SELECT t.id FROM users.verification_tokens t JOIN users.users u ON u.id = t.user_id"
            " WHERE u.email = $1"
        )
        old, new, used = [
            await conn.fetchval(by_email, f"{n}-link@example.com") for n in ("old", "new", "used")
        ]
        await conn.execute(
            "UPDATE users.verification_tokens SET expires_at = now() - interval '2 days' WHERE id = $1", old
        )
        await conn.execute(
            "UPDATE users.verification_tokens SET used_at = now() - interval '2 days' WHERE id = $1", used
        )
        run = await jobs.run("purge-verification-tokens")
        left = {row["id"] for row in await conn.fetch("SELECT id FROM users.verification_tokens")}
    finally:
        await conn.close()
    assert run["detail"] == "deleted 2 rows of verification_tokens"
    assert new in left
    assert not left & {old, used}
