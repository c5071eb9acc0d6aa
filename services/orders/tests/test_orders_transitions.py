"""Moving orders along the state machine over HTTP: who may, from which status, and under races."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_the_whole_happy_path(api: Any) -> None:
    _, alice = api.customer()
    _, admin = api.admin()
    order = await api.place(alice)
    steps = [("pay", alice, "paid"), ("ship", admin, "shipped"), ("deliver", admin, "delivered")]
    for action, headers, status in steps:
        response = await api.act(order["id"], action, headers)
        assert response.status_code == 200, response.text
        moved = response.json()
        assert moved["status"] == status
        assert moved["created_at"] == order["created_at"]
        assert moved["updated_at"] >= order["updated_at"]
        assert {k: v for k, v in moved.items() if k not in ("status", "updated_at")} == {
            k: v for k, v in order.items() if k not in ("status", "updated_at")
        }
    assert (await api.client.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()[
        "status"
    ] == "delivered"


@pytest.mark.parametrize("paid_first", [False, True])
async def test_owner_cancels_a_pending_or_paid_order(api: Any, paid_first: bool) -> None:
    _, alice = api.customer()
    order = await api.place(alice)
    if paid_first:
        assert (await api.act(order["id"], "pay", alice)).status_code == 200
    response = await api.act(order["id"], "cancel", alice)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


async def test_admin_cancels_someone_elses_order(api: Any) -> None:
    _, alice = api.customer()
    _, admin = api.admin()
    order = await api.place(alice)
    response = await api.act(order["id"], "cancel", admin)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


# (how far the order got, the action) pairs the state machine refuses.
NOT_ALLOWED = [
    ([], "ship"),
    ([], "deliver"),
    (["pay"], "pay"),
    (["pay"], "deliver"),
    (["pay", "ship"], "pay"),
    (["pay", "ship"], "ship"),
    (["pay", "ship"], "cancel"),
    (["pay", "ship", "deliver"], "pay"),
    (["pay", "ship", "deliver"], "ship"),
    (["pay", "ship", "deliver"], "deliver"),
    (["pay", "ship", "deliver"], "cancel"),
    (["cancel"], "pay"),
    (["cancel"], "ship"),
    (["cancel"], "deliver"),
    (["cancel"], "cancel"),
]


@pytest.mark.parametrize(("history", "action"), NOT_ALLOWED)
async def test_a_transition_not_allowed_from_the_status_is_409(
    api: Any, history: list[str], action: str
) -> None:
    _, alice = api.customer()
    _, admin = api.admin()
    who = {"pay": alice, "cancel": alice, "ship": admin, "deliver": admin}
    order = await api.place(alice)
    for step in history:
        assert (await api.act(order["id"], step, who[step])).status_code == 200
    before = (await api.client.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
    response = await api.act(order["id"], action, who[action])
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409
    after = (await api.client.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
    assert after == before


@pytest.mark.parametrize("action", ["ship", "deliver"])
async def test_ship_and_deliver_are_for_admins_only(api: Any, action: str) -> None:
    _, alice = api.customer()
    _, bob = api.customer()
    order = await api.place(alice)
    assert (await api.act(order["id"], "pay", alice)).status_code == 200
    for headers in (alice, bob):
        response = await api.act(order["id"], action, headers)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


async def test_only_the_owner_pays_even_an_admin_may_not(api: Any) -> None:
    _, alice = api.customer()
    _, admin = api.admin()
    order = await api.place(alice)
    response = await api.act(order["id"], "pay", admin)
    assert response.status_code == 403
    assert (await api.client.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()[
        "status"
    ] == "pending"


@pytest.mark.parametrize("action", ["pay", "cancel", "ship", "deliver"])
async def test_unknown_order_is_404(api: Any, action: str) -> None:
    _, admin = api.admin()
    response = await api.act("5b0e6b1e-9d6c-4c1e-9a51-7f1f4a0c2b11", action, admin)
    assert response.status_code == 404


async def test_concurrent_pay_and_cancel_exactly_one_wins(api: Any) -> None:
    _, alice = api.customer()
    for _ in range(10):
        order = await api.place(alice)
        pay, cancel = await asyncio.gather(
            api.act(order["id"], "pay", alice), api.act(order["id"], "cancel", alice)
        )
        assert sorted([pay.status_code, cancel.status_code]) == [200, 409]
        loser = pay if pay.status_code == 409 else cancel
        assert loser.headers["content-type"] == "application/problem+json"
        winner = "paid" if pay.status_code == 200 else "cancelled"
        final = (await api.client.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
        assert final["status"] == winner


async def test_concurrent_identical_transitions_only_one_succeeds(api: Any) -> None:
    _, alice = api.customer()
    order = await api.place(alice)
    responses = await asyncio.gather(*(api.act(order["id"], "pay", alice) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7


@pytest.mark.parametrize("action", ["pay", "cancel"])
async def test_someone_elses_order_is_404_even_while_a_transition_of_it_runs(
    run_app: Any, users: Any, action: str
) -> None:
    """Ownership is checked before anything about the order's state: a 409 would confirm it exists."""
    async with run_app() as (app, client):
        alice_id = users.add_user()
        alice, bob = users.bearer(alice_id), users.bearer(users.add_user())
        body = {
            "currency": "USD",
            "items": [{"sku": "S1", "name": "n", "quantity": 1, "unit_price_cents": 1}],
        }
        order = (await client.post("/api/v1/orders", json=body, headers=alice)).json()
        order_id = uuid.UUID(order["id"])
        with app.state.resources.gate.admit(order_id):  # the owner's transition in flight
            response = await client.post(f"/api/v1/orders/{order_id}/{action}", headers=bob)
            assert response.status_code == 404
            assert (
                await client.post(f"/api/v1/orders/{order_id}/{action}", headers=alice)
            ).status_code == 409
        for _ in range(2):  # and whatever the order's state
            await client.post(f"/api/v1/orders/{order_id}/{action}", headers=alice)
            response = await client.post(f"/api/v1/orders/{order_id}/{action}", headers=bob)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
