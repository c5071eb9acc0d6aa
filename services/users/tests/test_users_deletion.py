"""Deleting an account: by its owner with the password, or by an admin; one user.deleted event each."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aio_pika.abc import AbstractQueue

from shared.messaging.events import UserDeleted

from .conftest import PASSWORD, Api
from .test_users_events import take, user_events

pytestmark = pytest.mark.integration
__all__ = ["user_events"]


async def test_deleting_oneself_erases_the_account_and_frees_the_email(
    api: Api, user_events: AbstractQueue
) -> None:
    user = await api.register("gone@example.com")
    tokens = await api.tokens("gone@example.com")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    response = await api.client.post("/api/v1/users/me/delete", json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 204, response.text

    # Every way back in is closed: the access token names nobody, the refresh token is gone, the
    # password no longer logs in.
    assert (await api.client.get("/api/v1/users/me", headers=headers)).status_code == 401
    refreshed = await api.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert (await api.login("gone@example.com")).status_code == 400
    again = await api.client.post("/api/v1/users/me/delete", json={"password": PASSWORD}, headers=headers)
    assert again.status_code == 401

    messages = await take(user_events, 3, timeout=3.0)
    deleted = [m for m in messages if m.routing_key == "user.deleted"]
    assert len(deleted) == 1
    event = UserDeleted.model_validate_json(deleted[0].body)
    assert str(event.data.user_id) == user["id"]
    assert event.source == "users"

    # The address is free again, in any letter case, for a new account with a new id.
    reborn = await api.register("GONE@example.com")
    assert reborn["id"] != user["id"]


async def test_a_wrong_password_is_403_and_deletes_nothing(api: Api, user_events: AbstractQueue) -> None:
    await api.register("stays@example.com")
    headers = await api.bearer("stays@example.com")
    response = await api.client.post(
        "/api/v1/users/me/delete", json={"password": "not the password"}, headers=headers
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert (await api.client.get("/api/v1/users/me", headers=headers)).status_code == 200
    messages = await take(user_events, 2, timeout=2.0)
    assert [m.routing_key for m in messages] == ["user.registered"]


@pytest.mark.parametrize(
    "payload", [{}, {"password": ""}, {"password": 7}, {"password": "x" * 1025}, {"password": "a\x00b"}]
)
async def test_hostile_delete_bodies_are_4xx(api: Api, payload: dict[str, Any]) -> None:
    await api.register("hostile@example.com")
    headers = await api.bearer("hostile@example.com")
    response = await api.client.post("/api/v1/users/me/delete", json=payload, headers=headers)
    assert response.status_code in (403, 422)
    assert (await api.client.get("/api/v1/users/me", headers=headers)).status_code == 200


async def test_deleting_needs_a_token(api: Api) -> None:
    response = await api.client.post("/api/v1/users/me/delete", json={"password": PASSWORD})
    assert response.status_code == 401


async def test_an_admin_deletes_an_account_once_and_repeats_are_204(
    admin_api: tuple[Api, dict[str, str]], user_events: AbstractQueue
) -> None:
    api, admin = admin_api
    user = await api.register("removed@example.com")
    for _ in range(2):
        response = await api.client.delete(f"/api/v1/users/{user['id']}", headers=admin)
        assert response.status_code == 204
    assert (await api.client.get(f"/api/v1/users/{user['id']}", headers=admin)).status_code == 404
    messages = await take(user_events, 4, timeout=3.0)
    assert [m.routing_key for m in messages].count("user.deleted") == 1


async def test_only_an_admin_deletes_others(api: Api) -> None:
    victim = await api.register("victim@example.com")
    await api.register("mallory@example.com")
    headers = await api.bearer("mallory@example.com")
    response = await api.client.delete(f"/api/v1/users/{victim['id']}", headers=headers)
    assert response.status_code == 403
    assert (await api.client.delete(f"/api/v1/users/{uuid.uuid4()}")).status_code == 401
    assert (await api.client.delete("/api/v1/users/not-a-uuid", headers=headers)).status_code in (403, 422)
