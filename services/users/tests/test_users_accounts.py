"""/api/v1/users: the caller's own account, and the admin-only views."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_no_token_is_401_with_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


async def test_garbage_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_patch_me_changes_the_name_only(api: Any) -> None:
    user = await api.register("patch@example.com", full_name="Before")
    headers = await api.bearer("patch@example.com")
    response = await api.client.patch(
        "/api/v1/users/me", json={"full_name": "After", "roles": ["admin"]}, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["full_name"] == "After"
    assert body["roles"] == ["user"]
    assert body["id"] == user["id"]
    assert (await api.client.get("/api/v1/users/me", headers=headers)).json()["full_name"] == "After"


@pytest.mark.parametrize("payload", [{"full_name": ""}, {"full_name": "x" * 101}, {"full_name": 7}])
async def test_patch_me_validates(api: Any, payload: dict[str, Any]) -> None:
    await api.register("strict@example.com", full_name="Unchanged")
    headers = await api.bearer("strict@example.com")
    response = await api.client.patch("/api/v1/users/me", json=payload, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (await api.client.get("/api/v1/users/me", headers=headers)).json()["full_name"] == "Unchanged"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users"),
        ("GET", f"/api/v1/users/{uuid.uuid4()}"),
        ("POST", f"/api/v1/users/{uuid.uuid4()}/deactivate"),
    ],
)
async def test_admin_routes_are_403_for_a_user(api: Any, method: str, path: str) -> None:
    await api.register("plain@example.com")
    response = await api.client.request(method, path, headers=await api.bearer("plain@example.com"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_admin_reads_a_user_and_gets_404_for_unknown(admin_api: Any) -> None:
    api, admin = admin_api
    user = await api.register("seen@example.com")
    found = await api.client.get(f"/api/v1/users/{user['id']}", headers=admin)
    assert found.status_code == 200
    assert found.json() == user
    missing = await api.client.get(f"/api/v1/users/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await api.client.get("/api/v1/users/not-a-uuid", headers=admin)).status_code == 422
    gone = await api.client.post(f"/api/v1/users/{uuid.uuid4()}/deactivate", headers=admin)
    assert gone.status_code == 404


async def test_deactivated_user_cannot_use_a_live_access_token_on_me(admin_api: Any) -> None:
    api, admin = admin_api
    user = await api.register("late@example.com")
    headers = await api.bearer("late@example.com")
    await api.client.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin)
    assert (await api.client.get("/api/v1/users/me", headers=headers)).status_code == 403


async def test_list_is_keyset_paginated_newest_first(admin_api: Any) -> None:
    api, admin = admin_api
    created = [await api.register(f"page{i}@example.com") for i in range(5)]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await api.client.get("/api/v1/users", params=params, headers=admin)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3  # 6 accounts (5 + the admin) in pages of 2
    emails = [u["email"] for u in seen]
    assert emails[:5] == [u["email"] for u in reversed(created)]
    assert emails[5] == "root@example.com"
    assert len({u["id"] for u in seen}) == 6


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "%%%"}])
async def test_list_refuses_bad_page_parameters(admin_api: Any, params: dict[str, Any]) -> None:
    api, admin = admin_api
    response = await api.client.get("/api/v1/users", params=params, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
