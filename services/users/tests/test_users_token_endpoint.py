"""The token endpoint: RFC 6749 grants, errors in the section 5.2 shape, rotation and reuse detection."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
import pytest

pytestmark = pytest.mark.integration

TOKEN = "/api/v1/auth/token"


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error


async def test_password_grant_issues_tokens(api: Any) -> None:
    user = await api.register("turing@example.com")
    response = await api.login("turing@example.com")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user["id"]
    assert claims["roles"] == ["user"]
    assert {"iss", "aud", "sub", "exp", "iat", "jti", "roles"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 900


async def test_access_token_opens_users_me(api: Any) -> None:
    user = await api.register("me@example.com", full_name="Me Myself")
    response = await api.client.get("/api/v1/users/me", headers=await api.bearer("me@example.com"))
    assert response.status_code == 200
    assert response.json() == user


async def test_wrong_password_and_unknown_email_look_the_same(api: Any) -> None:
    await api.register("known@example.com")
    wrong = await api.login("known@example.com", "not the password")
    unknown = await api.login("nobody@example.com", "not the password")
    assert_oauth_error(wrong, "invalid_grant")
    assert_oauth_error(unknown, "invalid_grant")
    assert wrong.json() == unknown.json()


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "a@example.com"}, "invalid_request"),
        ({"grant_type": "password", "password": "whatever!"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "made-up"}, "invalid_grant"),
        ({"grant_type": "password", "username": "a" * 400, "password": "whatever!"}, "invalid_request"),
    ],
)
async def test_bad_requests_get_rfc6749_errors(
    client: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    assert_oauth_error(await client.post(TOKEN, data=form), error)


async def test_a_json_body_is_not_a_grant(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, json={"grant_type": "password", "username": "a", "password": "b"})
    assert_oauth_error(response, "unsupported_grant_type")


async def test_a_malformed_multipart_body_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKEN, content=b"--nope\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert_oauth_error(response, "invalid_request")


async def test_refresh_rotates_and_each_token_is_good_once(api: Any) -> None:
    await api.register("rotate@example.com")
    first = await api.tokens("rotate@example.com")
    second = await api.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    third = await api.refresh(rotated["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_family(api: Any) -> None:
    await api.register("reuse@example.com")
    first = await api.tokens("reuse@example.com")
    rotated = (await api.refresh(first["refresh_token"])).json()
    assert_oauth_error(await api.refresh(first["refresh_token"]), "invalid_grant")
    # The legitimate holder's newer token died with the family.
    assert_oauth_error(await api.refresh(rotated["refresh_token"]), "invalid_grant")


async def test_other_sessions_survive_a_reuse(api: Any) -> None:
    await api.register("two@example.com")
    laptop = await api.tokens("two@example.com")
    phone = await api.tokens("two@example.com")
    await api.refresh(laptop["refresh_token"])
    await api.refresh(laptop["refresh_token"])
    assert (await api.refresh(phone["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_never_both_succeed(api: Any) -> None:
    await api.register("race@example.com")
    token = (await api.tokens("race@example.com"))["refresh_token"]
    responses = await asyncio.gather(*(api.refresh(token) for _ in range(5)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) <= 1
    for winner in winners:
        # The race counts as reuse: the token the winner got was revoked with its family.
        assert_oauth_error(await api.refresh(winner.json()["refresh_token"]), "invalid_grant")


async def test_revoke_ends_the_session(api: Any) -> None:
    await api.register("bye@example.com")
    tokens = await api.tokens("bye@example.com")
    response = await api.client.post("/api/v1/auth/revoke", data={"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert_oauth_error(await api.refresh(tokens["refresh_token"]), "invalid_grant")


async def test_revoke_of_an_unknown_token_is_still_200(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/auth/revoke", data={"token": "never-issued"})).status_code == 200
    assert_oauth_error(await client.post("/api/v1/auth/revoke", data={}), "invalid_request")


async def test_deactivated_user_gets_invalid_grant(admin_api: Any) -> None:
    api, admin = admin_api
    user = await api.register("gone@example.com")
    tokens = await api.tokens("gone@example.com")
    response = await api.client.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin)
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert_oauth_error(await api.login("gone@example.com"), "invalid_grant")
    assert_oauth_error(await api.refresh(tokens["refresh_token"]), "invalid_grant")


async def test_password_change_revokes_refresh_tokens(api: Any) -> None:
    await api.register("change@example.com", "old password 1")
    tokens = await api.tokens("change@example.com", "old password 1")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    wrong = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": "not it at all", "new_password": "new password 2"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == "application/problem+json"
    changed = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": "old password 1", "new_password": "new password 2"},
        headers=headers,
    )
    assert changed.status_code == 204
    assert_oauth_error(await api.refresh(tokens["refresh_token"]), "invalid_grant")
    assert_oauth_error(await api.login("change@example.com", "old password 1"), "invalid_grant")
    assert (await api.login("change@example.com", "new password 2")).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "nul\x00@example.com", "password": "whatever"},
        {"grant_type": "password", "username": "someone@example.com", "password": "what\x00ever"},
        {"grant_type": "refresh_token", "refresh_token": "abc\x00def"},
    ],
)
async def test_control_characters_are_an_invalid_request(client: Any, form: dict[str, str]) -> None:
    response = await client.post("/api/v1/auth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_crafted_cursor_on_the_user_list_is_a_422(admin_api: Any) -> None:
    api, headers = admin_api
    cursor = "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMCswMDowMCIsImkiOjV9"  # {"t": ..., "i": 5}
    response = await api.client.get("/api/v1/users", params={"cursor": cursor}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_revoke_refuses_control_characters_in_any_parameter(client: Any) -> None:
    for form in ({"token": "abc\x00"}, {"token": "abc", "token_type_hint": "\x0c"}):
        response = await client.post("/api/v1/auth/revoke", data=form)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
