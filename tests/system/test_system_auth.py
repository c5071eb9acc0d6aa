"""The auth path as a client sees it, through the gateway and directly, on real processes."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.devstack import Stack
from shared.testing.waits import eventually_blocking

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, read_log

pytestmark = pytest.mark.system

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def unauthorized(response: httpx.Response) -> None:
    problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def password_grant(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )


def refresh_grant(client: httpx.Client, refresh_token: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def count_users(database_url: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            value: int = await conn.fetchval("SELECT count(*) FROM users.users")
            return value
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url("gateway"), timeout=10.0)


@pytest.fixture(scope="module")
def direct(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url("users"), timeout=10.0)


def test_register_login_refresh_reuse_revoke_walk(gateway: httpx.Client, direct: httpx.Client) -> None:
    email = new_email()
    created = gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": "correct horse", "full_name": "Ada"}
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert set(user) >= {"id", "email", "full_name", "roles", "is_active", "created_at"}
    assert user["roles"] == ["user"]
    assert user["is_active"] is True
    assert "password" not in created.text

    tokens = password_grant(gateway, email, "correct horse")
    assert tokens.status_code == 200, tokens.text
    pair = tokens.json()
    assert pair["token_type"].lower() == "bearer"
    assert pair["expires_in"] > 0
    assert pair["refresh_token"]
    assert tokens.headers.get("cache-control") == "no-store"

    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    me = gateway.get("/api/v1/users/me", headers=auth)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    # The service checks the token itself and answers a direct call the same way.
    assert direct.get("/api/v1/users/me", headers=auth).json() == me.json()

    rotated = refresh_grant(gateway, pair["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != pair["refresh_token"]
    assert gateway.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {second['access_token']}"}
    ).is_success

    # Reusing the first refresh token is theft: the whole family goes, the fresh token included.
    reused = refresh_grant(gateway, pair["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    family_gone = refresh_grant(gateway, second["refresh_token"])
    assert family_gone.status_code == 400
    assert family_gone.json()["error"] == "invalid_grant"

    third = password_grant(gateway, email, "correct horse").json()
    revoked = gateway.post("/api/v1/auth/revoke", data={"token": third["refresh_token"]})
    assert revoked.status_code == 200
    after_revoke = refresh_grant(gateway, third["refresh_token"])
    assert after_revoke.status_code == 400
    assert after_revoke.json()["error"] == "invalid_grant"

    unauthorized(gateway.get("/api/v1/users/me"))
    unauthorized(gateway.get("/api/v1/users/me", headers={"Authorization": "Bearer not-a-token"}))


def test_token_endpoint_errors_follow_rfc6749(gateway: httpx.Client) -> None:
    unknown = gateway.post("/api/v1/auth/token", data={"grant_type": "client_credentials"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "unsupported_grant_type"
    assert "error_description" in unknown.json()
    missing = gateway.post("/api/v1/auth/token", data={"grant_type": "password", "username": "x@example.com"})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    wrong = password_grant(gateway, new_email(), "whatever-password")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"


def test_bad_inputs_get_documented_errors_and_store_nothing(
    gateway: httpx.Client, test_database_url: str
) -> None:
    before = count_users(test_database_url)
    malformed = gateway.post(
        "/api/v1/auth/register",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    problem(malformed, 422)
    wrong_types = gateway.post(
        "/api/v1/auth/register", json={"email": 42, "password": ["x"], "full_name": None}
    )
    errors = problem(wrong_types, 422)["errors"]
    assert {tuple(e["loc"])[-1] for e in errors} >= {"email", "password", "full_name"}
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    short = gateway.post(
        "/api/v1/auth/register", json={"email": new_email(), "password": "short", "full_name": "A"}
    )
    problem(short, 422)
    no_name = gateway.post(
        "/api/v1/auth/register", json={"email": new_email(), "password": "long enough", "full_name": ""}
    )
    problem(no_name, 422)
    huge = gateway.post(
        "/api/v1/auth/register",
        content=b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    problem(huge, 413)
    assert count_users(test_database_url) == before


def test_duplicate_email_is_a_conflict_case_insensitively(gateway: httpx.Client) -> None:
    email = new_email()
    body = {"email": email, "password": "long enough", "full_name": "First"}
    assert gateway.post("/api/v1/auth/register", json=body).status_code == 201
    again = gateway.post("/api/v1/auth/register", json={**body, "email": email.upper()})
    problem(again, 409)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _kid(gateway: httpx.Client) -> str:
    keys = gateway.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    assert all({"kid", "kty", "alg", "use"} <= k.keys() and k["use"] == "sig" for k in keys)
    assert all(not k["alg"].startswith("HS") for k in keys)
    kid: str = keys[0]["kid"]
    return kid


def _claims(sub: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "http://users",
        "aud": "api",
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "roles": ["user", "admin"],
    }
    claims.update(overrides)
    return claims


def test_forged_and_expired_tokens_are_refused_everywhere(
    gateway: httpx.Client, direct: httpx.Client, signing_key: Ed25519PrivateKey
) -> None:
    kid = _kid(gateway)
    sub = str(uuid.uuid4())
    now = int(time.time())
    expired = jwt.encode(
        _claims(sub, iat=now - 3600, exp=now - 1800), signing_key, algorithm="EdDSA", headers={"kid": kid}
    )
    good = jwt.encode(_claims(sub), signing_key, algorithm="EdDSA", headers={"kid": kid})
    header, _, signature = good.split(".")
    tampered = f"{header}.{_b64(json.dumps(_claims(str(uuid.uuid4()))).encode())}.{signature}"
    alg_none = (
        f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{_b64(json.dumps(_claims(sub)).encode())}."
    )
    public_x = gateway.get("/.well-known/jwks.json").json()["keys"][0].get("x", "secret")
    hs_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{_b64(json.dumps(_claims(sub)).encode())}"
    )
    hs256 = hs_input + "." + _b64(hmac.new(public_x.encode(), hs_input.encode(), hashlib.sha256).digest())
    wrong_audience = jwt.encode(
        _claims(sub, aud="other"), signing_key, algorithm="EdDSA", headers={"kid": kid}
    )
    for token in (expired, tampered, alg_none, hs256, wrong_audience):
        for client in (gateway, direct):
            unauthorized(client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}))
            unauthorized(client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}))


def test_admin_seeded_from_environment_and_admin_only_routes(gateway: httpx.Client) -> None:
    admin = password_grant(gateway, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin.status_code == 200, admin.text
    admin_auth = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    me = gateway.get("/api/v1/users/me", headers=admin_auth).json()
    assert set(me["roles"]) == {"user", "admin"}

    email = new_email()
    user = gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": "long enough", "full_name": "U"}
    ).json()
    user_auth = {
        "Authorization": f"Bearer {password_grant(gateway, email, 'long enough').json()['access_token']}"
    }
    problem(gateway.get("/api/v1/users", headers=user_auth), 403)
    problem(gateway.post(f"/api/v1/users/{user['id']}/deactivate", headers=user_auth), 403)

    page = gateway.get("/api/v1/users", params={"limit": 1}, headers=admin_auth)
    assert page.status_code == 200
    assert len(page.json()["items"]) == 1
    assert page.json()["next_cursor"]

    deactivated = gateway.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin_auth)
    assert deactivated.status_code == 200
    assert deactivated.json()["is_active"] is False
    login = password_grant(gateway, email, "long enough")
    assert login.status_code == 400
    assert login.json()["error"] == "invalid_grant"


def test_gateway_never_exposes_internal_or_service_probes(
    gateway: httpx.Client, direct: httpx.Client
) -> None:
    some_id = str(uuid.uuid4())
    for path in (f"/internal/users/{some_id}", "/api/v1/users/../../internal/users/x"):
        assert gateway.get(path).status_code == 404
    # The gateway answers its own probes; the services' are not reachable through it.
    assert gateway.get("/healthz").status_code == 200
    assert "http_requests" in gateway.get("/metrics").text
    assert direct.get(f"/internal/users/{some_id}").status_code == 401


def test_request_id_reaches_the_service_log(gateway: httpx.Client, stack: Stack) -> None:
    request_id = f"sys-{uuid.uuid4().hex}"
    response = gateway.post(
        "/api/v1/auth/register",
        json={"email": new_email(), "password": "long enough", "full_name": "Traced"},
        headers={"X-Request-ID": request_id},
    )
    assert response.headers["x-request-id"] == request_id

    # Each access line is written once its response has gone out, so it may trail the answer a little.
    def logged(name: str) -> bool:
        return request_id in read_log(stack, name)

    for name in ("users", "gateway"):
        eventually_blocking(functools.partial(logged, name), message=f"{request_id} not in the {name} log")
