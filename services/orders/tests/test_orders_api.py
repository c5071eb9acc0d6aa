"""Creating, reading and listing orders through the HTTP API, as a client would."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

pytestmark = pytest.mark.integration

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_create_answers_201_with_location_and_server_side_totals(api: Any) -> None:
    user_id, headers = api.customer()
    response = await api.create(
        headers,
        {
            "currency": "USD",
            "items": [
                {"sku": "BOOK-1", "name": "A book", "quantity": 3, "unit_price_cents": 1250},
                {"sku": "pen_2", "name": "A pen", "quantity": 1, "unit_price_cents": 0},
            ],
        },
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/api/v1/orders/{order['id']}"
    assert response.headers["content-type"] == "application/json"
    assert set(order) == {
        "id",
        "user_id",
        "status",
        "currency",
        "items",
        "total_cents",
        "created_at",
        "updated_at",
    }
    assert uuid.UUID(order["id"])
    assert order["user_id"] == str(user_id)
    assert order["status"] == "pending"
    assert order["currency"] == "USD"
    assert order["items"] == [
        {
            "sku": "BOOK-1",
            "name": "A book",
            "quantity": 3,
            "unit_price_cents": 1250,
            "line_total_cents": 3750,
        },
        {"sku": "pen_2", "name": "A pen", "quantity": 1, "unit_price_cents": 0, "line_total_cents": 0},
    ]
    assert order["total_cents"] == 3750
    assert RFC3339_UTC.match(order["created_at"])
    assert RFC3339_UTC.match(order["updated_at"])
    assert (await api.client.get(response.headers["location"], headers=headers)).json() == order


async def test_the_largest_order_fits(api: Any, body: Callable[..., dict[str, Any]]) -> None:
    _, headers = api.customer()
    items = [(f"S{i}", 1000, 1_000_000_000) for i in range(100)]
    order = await api.place(headers, body(*items))
    assert order["total_cents"] == 100 * 1000 * 1_000_000_000


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        (
            {"currency": "usd", "items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price_cents": 1}]},
            "currency",
        ),
        ({"currency": "USD", "items": []}, "items"),
        (
            {"currency": "USD", "items": [{"sku": "A B", "name": "a", "quantity": 1, "unit_price_cents": 1}]},
            "sku",
        ),
        (
            {"currency": "USD", "items": [{"sku": "A", "name": "", "quantity": 1, "unit_price_cents": 1}]},
            "name",
        ),
        (
            {"currency": "USD", "items": [{"sku": "A", "name": "a", "quantity": 0, "unit_price_cents": 1}]},
            "quantity",
        ),
        (
            {"currency": "USD", "items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price_cents": -5}]},
            "unit_price_cents",
        ),
    ],
)
async def test_invalid_body_is_422_problem_naming_the_field(
    api: Any, payload: dict[str, Any], loc: str
) -> None:
    _, headers = api.customer()
    response = await api.create(headers, payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["request_id"] == response.headers["x-request-id"]
    assert any(error["loc"][-1] == loc for error in problem["errors"]), problem
    assert (await api.client.get("/api/v1/orders", headers=headers)).json()["items"] == []


async def test_malformed_json_is_422(api: Any) -> None:
    _, headers = api.customer()
    response = await api.client.post(
        "/api/v1/orders", content=b"{nope", headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic abc"])
async def test_without_a_valid_token_401_with_www_authenticate(api: Any, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for response in (
        await api.client.get("/api/v1/orders", headers=headers),
        await api.client.post("/api/v1/orders", json={}, headers=headers),
        await api.client.get(f"/api/v1/orders/{uuid.uuid4()}", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_expired_token_is_401(api: Any) -> None:
    user_id = api.users.add_user()
    token = api.users.token(user_id, exp=int(datetime.now().timestamp()) - 60)
    response = await api.client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_someone_elses_order_is_404_and_unknown_ids_too(api: Any) -> None:
    _, alice = api.customer()
    _, bob = api.customer()
    order = await api.place(alice)
    for path in (f"/api/v1/orders/{order['id']}", f"/api/v1/orders/{uuid.uuid4()}"):
        response = await api.client.get(path, headers=bob)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    for action in ("pay", "cancel"):
        assert (await api.act(order["id"], action, bob)).status_code == 404
    assert (await api.client.get(f"/api/v1/orders/{order['id']}", headers=alice)).status_code == 200


async def test_list_is_the_callers_own_newest_first_and_paginated(api: Any) -> None:
    _, alice = api.customer()
    _, bob = api.customer()
    mine = [(await api.place(alice))["id"] for _ in range(5)]
    await api.place(bob)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/orders", params=params, headers=alice)).json()
        seen += [o["id"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    assert pages == 3


async def test_list_filters_by_status(api: Any) -> None:
    _, alice = api.customer()
    first, second, third = [await api.place(alice) for _ in range(3)]
    assert (await api.act(first["id"], "pay", alice)).status_code == 200
    assert (await api.act(third["id"], "cancel", alice)).status_code == 200

    async def ids(status: str) -> list[str]:
        response = await api.client.get("/api/v1/orders", params={"status": status}, headers=alice)
        assert response.status_code == 200
        return [o["id"] for o in response.json()["items"]]

    assert await ids("paid") == [first["id"]]
    assert await ids("pending") == [second["id"]]
    assert await ids("cancelled") == [third["id"]]
    assert await ids("shipped") == []
    bad = await api.client.get("/api/v1/orders", params={"status": "lost"}, headers=alice)
    assert bad.status_code == 422


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "%%%"}])
async def test_bad_page_parameters_are_422(api: Any, params: dict[str, Any]) -> None:
    _, alice = api.customer()
    response = await api.client.get("/api/v1/orders", params=params, headers=alice)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_admin_sees_every_order_and_filters_by_user(api: Any) -> None:
    alice_id, alice = api.customer()
    bob_id, bob = api.customer()
    _, admin = api.admin()
    a = await api.place(alice)
    b = await api.place(bob)
    everyone = (await api.client.get("/api/v1/orders", headers=admin)).json()["items"]
    assert [o["id"] for o in everyone] == [b["id"], a["id"]]
    only_alice = await api.client.get("/api/v1/orders", params={"user_id": str(alice_id)}, headers=admin)
    assert [o["id"] for o in only_alice.json()["items"]] == [a["id"]]
    assert (await api.client.get(f"/api/v1/orders/{b['id']}", headers=admin)).json() == b
    # A user's user_id filter cannot widen their view.
    snoop = await api.client.get("/api/v1/orders", params={"user_id": str(bob_id)}, headers=alice)
    assert snoop.json() == {"items": [], "next_cursor": None}


async def test_openapi_documents_every_endpoint_with_a_summary(api: Any) -> None:
    document = (await api.client.get("/openapi.json")).json()
    operations = {
        (method, path): op for path, item in document["paths"].items() for method, op in item.items()
    }
    assert set(operations) == {
        ("post", "/api/v1/orders"),
        ("get", "/api/v1/orders"),
        ("get", "/api/v1/orders/{order_id}"),
        ("post", "/api/v1/orders/{order_id}/pay"),
        ("post", "/api/v1/orders/{order_id}/cancel"),
        ("post", "/api/v1/orders/{order_id}/ship"),
        ("post", "/api/v1/orders/{order_id}/deliver"),
        ("get", "/api/v1/admin/jobs/orders"),
        ("post", "/api/v1/admin/jobs/orders/{name}/pause"),
        ("post", "/api/v1/admin/jobs/orders/{name}/resume"),
        ("post", "/api/v1/admin/jobs/orders/{name}/run"),
        ("put", "/api/v1/admin/jobs/orders/{name}/schedule"),
        ("get", "/api/v1/admin/jobs/orders/{name}/runs"),
    }
    assert all(op.get("description") for op in operations.values())


@pytest.mark.parametrize("name", ["nul\x00byte", "escape\x1b[2J", "line\nbreak"])
async def test_an_item_name_with_control_characters_is_a_422(api: Any, name: str) -> None:
    _, headers = api.customer()
    body = {"currency": "USD", "items": [{"sku": "S1", "name": name, "quantity": 1, "unit_price_cents": 1}]}
    response = await api.create(headers, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "items", 0, "name"]
    assert (await api.client.get("/api/v1/orders", headers=headers)).json()["items"] == []


@pytest.mark.parametrize(
    "cursor",
    [
        "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMCswMDowMCIsImkiOjV9",  # {"t": ..., "i": 5}
        "eyJ0IjoiMDAwMS0wMS0wMVQwMDowMDowMCswNTowMCIsImkiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDEifQ",
    ],
)
async def test_a_crafted_cursor_is_a_422(api: Any, cursor: str) -> None:
    _, headers = api.customer()
    response = await api.client.get("/api/v1/orders", params={"cursor": cursor}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
