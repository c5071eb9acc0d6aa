"""Registration: the contract's 201 / 409 / 422 answers, and nothing stored on a refusal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

USER_FIELDS = {"id", "email", "full_name", "roles", "is_active", "email_verified", "avatar_url", "created_at"}


async def test_register_returns_the_new_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "Ada@Example.com", "password": "analytical engine", "full_name": "Ada Lovelace"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == "Ada@Example.com"
    assert body["roles"] == ["user"]
    assert body["is_active"] is True
    assert body["email_verified"] is False
    assert body["avatar_url"] is None
    assert body["created_at"].endswith("Z")
    assert "password" not in response.text


async def test_email_is_unique_whatever_the_case(api: Any) -> None:
    await api.register("grace@example.com")
    response = await api.client.post(
        "/api/v1/auth/register",
        json={"email": "GRACE@EXAMPLE.COM", "password": "another password", "full_name": "Grace"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409


async def test_simultaneous_sign_ups_with_one_email_create_one_account(client: httpx.AsyncClient) -> None:
    import asyncio

    async def sign_up(email: str) -> int:
        payload = {"email": email, "password": "same time pw", "full_name": "Twin"}
        return (await client.post("/api/v1/auth/register", json=payload)).status_code

    statuses = await asyncio.gather(*(sign_up(e) for e in ["twin@example.com", "TWIN@example.com"] * 3))
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]


async def test_login_ignores_email_case(api: Any) -> None:
    await api.register("Linus@Example.org")
    assert (await api.login("linus@example.ORG")).status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": "long enough", "full_name": "X"}, "email"),
        ({"email": "a@example.com", "password": "short", "full_name": "X"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129, "full_name": "X"}, "password"),
        ({"email": "a@example.com", "password": "long enough", "full_name": ""}, "full_name"),
        ({"email": "a@example.com", "password": "long enough", "full_name": "x" * 101}, "full_name"),
        ({"email": "a@example.com", "password": 12345678, "full_name": "X"}, "password"),
        ({"email": "a@example.com", "password": "long enough"}, "full_name"),
    ],
)
async def test_invalid_registration_is_422_and_stores_nothing(
    api: Any, payload: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id", "errors"} <= set(body)
    assert any(error["loc"][-1] == field for error in body["errors"])
    assert "long enough" not in response.text, "submitted values are never echoed"
    assert (await api.login("a@example.com", "long enough")).json()["error"] == "invalid_grant"


async def test_malformed_json_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_password_is_stored_as_argon2id(api: Any, clean_db: Any) -> None:
    import asyncpg

    await api.register("hash@example.com", "plain text pw")
    conn = await asyncpg.connect(clean_db.admin_url)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users.users")
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$")
    assert "plain text pw" not in stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "Ada\x00Lovelace"),
        ("full_name", "Ada\x1b[2JLovelace"),
        ("email", "ada\x00@example.com"),
        ("password", "correct\x00horse"),
    ],
)
async def test_control_characters_are_a_422(client: httpx.AsyncClient, field: str, value: str) -> None:
    body = {"email": "ada@example.com", "password": "analytical engine", "full_name": "Ada", field: value}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert "\x00" not in response.text


async def test_patch_me_refuses_control_characters(api: Any) -> None:
    await api.register("patch@example.com")
    headers = await api.bearer("patch@example.com")
    response = await api.client.patch("/api/v1/users/me", json={"full_name": "a\x00b"}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_nfc_and_nfd_spellings_are_one_account(api: Any) -> None:
    composed, decomposed = "jos\u00e9@example.com", "jose\u0301@example.com"
    await api.register(composed)
    response = await api.client.post(
        "/api/v1/auth/register",
        json={"email": decomposed, "password": "another password", "full_name": "Jose"},
    )
    assert response.status_code == 409
    assert (await api.login(decomposed.upper())).status_code == 200


@pytest.mark.parametrize(
    "email", ["\u0130lker@example.com", "STRASSE@example.com", "stra\u00dfe@example.com"]
)
async def test_an_address_outside_ascii_can_log_in_in_any_case(api: Any, email: str) -> None:
    body = await api.register(email)
    assert body["email"] == email  # kept as typed
    for spelling in (email, email.upper(), email.lower(), email.casefold()):
        assert (await api.login(spelling)).status_code == 200, spelling


async def test_sign_ups_are_rate_limited_per_client(run_app: Any) -> None:
    async with run_app(rate_limit_scale=1, register_burst=3) as (_, client):

        def sign_up(n: int, address: str) -> Any:
            body = {"email": f"u{n}@example.com", "password": "a long password", "full_name": "U"}
            return client.post("/api/v1/auth/register", json=body, headers={"X-Forwarded-For": address})

        for n in range(3):
            assert (await sign_up(n, "203.0.113.7")).status_code == 201
        refused = await sign_up(3, "203.0.113.7")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await sign_up(4, "198.51.100.8")).status_code == 201  # another client


async def test_rate_limit_scale_widens_the_sign_up_limit(run_app: Any) -> None:
    async with run_app(rate_limit_scale=2, register_burst=3) as (_, client):
        statuses = []
        for n in range(7):
            body = {"email": f"s{n}@example.com", "password": "a long password", "full_name": "S"}
            statuses.append((await client.post("/api/v1/auth/register", json=body)).status_code)
        assert statuses == [201] * 6 + [429]
