"""Schema isolation: another service's role cannot read the users tables."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from shared.db.bootstrap import ServiceDatabase, ensure_service_schema
from shared.service.settings import with_credentials

pytestmark = pytest.mark.integration


async def test_another_service_role_cannot_read_users(users_db: Any) -> None:
    from urllib.parse import urlsplit

    password = "probe-test" if urlsplit(users_db.admin_url).password else None
    await ensure_service_schema(users_db.admin_url, ServiceDatabase("probe", "probe_svc", password))
    conn = await asyncpg.connect(with_credentials(users_db.admin_url, "probe_svc", password))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM users.users")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM users.refresh_tokens")
    finally:
        await conn.close()


async def test_the_tables_belong_to_the_service_role(users_db: Any) -> None:
    conn = await asyncpg.connect(users_db.admin_url)
    try:
        owners = await conn.fetch("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'users'")
    finally:
        await conn.close()
    assert {row["tableowner"] for row in owners} == {"users_svc"}
    assert {row["tablename"] for row in owners} >= {"users", "refresh_tokens", "login_failures"}
