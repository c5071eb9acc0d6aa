"""/internal/users/{id}: other services read an account with a service credential."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration

TOKEN = "internal-token-for-tests"  # conftest.INTERNAL_TOKEN


async def test_service_token_reads_a_user(api: Any) -> None:
    user = await api.register("svc@example.com", full_name="Served")
    response = await api.client.get(f"/internal/users/{user['id']}", headers={"X-Service-Token": TOKEN})
    assert response.status_code == 200
    assert response.json() == {
        "id": user["id"],
        "email": "svc@example.com",
        "full_name": "Served",
        "roles": ["user"],
        "is_active": True,
    }


@pytest.mark.parametrize("headers", [{}, {"X-Service-Token": "wrong"}, {"X-Service-Token": ""}])
async def test_missing_or_wrong_credential_is_401(api: Any, headers: dict[str, str]) -> None:
    user = await api.register("svc2@example.com")
    response = await api.client.get(f"/internal/users/{user['id']}", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_user_access_token_is_not_a_service_credential(api: Any) -> None:
    user = await api.register("svc3@example.com")
    response = await api.client.get(
        f"/internal/users/{user['id']}", headers=await api.bearer("svc3@example.com")
    )
    assert response.status_code == 401


async def test_unknown_user_is_404(client: Any) -> None:
    response = await client.get(f"/internal/users/{uuid.uuid4()}", headers={"X-Service-Token": TOKEN})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_any_configured_token_works(run_app: Any) -> None:
    from pydantic import SecretStr

    tokens = [SecretStr("old-token-being-rotated-out"), SecretStr("new-token")]
    async with run_app(internal_tokens=tokens) as (_, client):
        for token in ("old-token-being-rotated-out", "new-token"):
            response = await client.get(f"/internal/users/{uuid.uuid4()}", headers={"X-Service-Token": token})
            assert response.status_code == 404


async def test_internal_routes_are_not_in_the_openapi_document(client: Any) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/internal")]


async def test_internal_admins_names_the_active_admins_only(admin_api: Any) -> None:
    api, admin = admin_api
    await api.register("plain@example.com")
    listed = await api.client.get("/internal/admins", headers={"X-Service-Token": TOKEN})
    assert listed.status_code == 200
    assert [a["email"] for a in listed.json()["items"]] == ["root@example.com"]
    assert (await api.client.get("/internal/admins")).status_code == 401
    assert (await api.client.get("/internal/admins", headers=admin)).status_code == 401


# ---- /internal/users?ids=: many accounts in one call (GraphQL's DataLoader) ---------------------------


async def test_batch_reads_the_accounts_that_exist_and_leaves_out_the_others(api: Any) -> None:
    one = await api.register("batch1@example.com", full_name="One")
    two = await api.register("batch2@example.com", full_name="Two")
    ids = ",".join([one["id"], str(uuid.uuid4()), two["id"], one["id"]])
    response = await api.client.get(
        "/internal/users", params={"ids": ids}, headers={"X-Service-Token": TOKEN}
    )
    assert response.status_code == 200, response.text
    items = sorted(response.json()["items"], key=lambda item: item["full_name"])
    assert [item["id"] for item in items] == [one["id"], two["id"]]
    assert set(items[0]) == {"id", "email", "full_name", "roles", "is_active", "created_at"}
    assert items[0]["email"] == "batch1@example.com"


@pytest.mark.parametrize(
    "ids",
    [
        "",
        " , ",
        "not-a-uuid",
        ",".join(str(uuid.uuid4()) for _ in range(101)),
        "x" * 5000,
        "\x00",
    ],
)
async def test_batch_refuses_bad_id_lists_with_422(client: Any, ids: str) -> None:
    response = await client.get("/internal/users", params={"ids": ids}, headers={"X-Service-Token": TOKEN})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_batch_takes_100_ids(client: Any) -> None:
    ids = ",".join(str(uuid.uuid4()) for _ in range(100))
    response = await client.get("/internal/users", params={"ids": ids}, headers={"X-Service-Token": TOKEN})
    assert response.status_code == 200
    assert response.json() == {"items": []}


async def test_batch_needs_the_service_credential(api: Any) -> None:
    user = await api.register("batch3@example.com")
    for headers in ({}, {"X-Service-Token": "wrong"}, await api.bearer("batch3@example.com")):
        response = await api.client.get("/internal/users", params={"ids": user["id"]}, headers=headers)
        assert response.status_code == 401
    missing = await api.client.get("/internal/users", headers={"X-Service-Token": TOKEN})
    assert missing.status_code == 422
