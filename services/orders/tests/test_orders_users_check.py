"""The synchronous account check against users: 403 for unknown or inactive accounts, 503 with
Retry-After and nothing stored when users cannot answer, and the breaker that then protects it."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shared.testing.servers import closed_port_url
from shared.testing.users import UsersStandIn
from shared.testing.waits import eventually

pytestmark = pytest.mark.integration


async def stored_orders(clean_db: Any) -> int:
    import asyncpg

    conn = await asyncpg.connect(clean_db.admin_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders.orders"))
    finally:
        await conn.close()


async def test_the_check_carries_the_service_token_and_the_request_id(api: Any) -> None:
    user_id, alice = api.customer()
    response = await api.create(alice, None, **{"X-Request-ID": "trace-me-1"})
    assert response.status_code == 201
    assert api.users.internal_calls == [
        {"user_id": str(user_id), "token": api.users.service_token, "request_id": "trace-me-1"}
    ]


async def test_a_deactivated_account_is_403_and_nothing_is_stored(api: Any, clean_db: Any) -> None:
    user_id = api.users.add_user(active=False)
    response = await api.create(api.users.bearer(user_id))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_orders(clean_db) == 0


async def test_an_account_users_does_not_know_is_403(api: Any, clean_db: Any) -> None:
    import uuid

    response = await api.create(api.users.bearer(uuid.uuid4()))
    assert response.status_code == 403
    assert await stored_orders(clean_db) == 0


@pytest.mark.parametrize("failure", [503, 500])
async def test_users_failing_is_503_with_retry_after_and_nothing_stored(
    api: Any, clean_db: Any, failure: int
) -> None:
    _, alice = api.customer()
    api.users.failing_with = failure
    response = await api.create(alice)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert await stored_orders(clean_db) == 0
    # Retried, boundedly: one call and two retries (ORDERS_USERS_RETRIES=2).
    assert len(api.users.internal_calls) == 3


async def test_users_too_slow_is_503(run_app: Any, users: Any, clean_db: Any) -> None:
    user_id = users.add_user()
    users.delay = 0.5
    async with run_app(users_timeout=0.2) as (_, client):
        response = await client.post(
            "/api/v1/orders",
            json={
                "currency": "USD",
                "items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price_cents": 1}],
            },
            headers=users.bearer(user_id),
        )
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert await stored_orders(clean_db) == 0
    # A timeout is not retried: the client would wait several timeouts.
    assert len(users.internal_calls) == 1


async def test_users_gone_opens_the_breaker(run_app: Any, clean_db: Any) -> None:
    """Tokens still verify (the JWKS was fetched while users was up); the account check cannot."""
    standin = UsersStandIn()
    user_id = standin.add_user()
    headers = standin.bearer(user_id)
    body = {"currency": "USD", "items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price_cents": 1}]}
    with contextlib.ExitStack() as server:
        server.enter_context(standin.serving())
        settings = {
            "users_url": standin.url,
            "users_service_token": SecretStr(standin.service_token),
            "breaker_failure_threshold": 2,
            "breaker_reset_timeout": 30,
        }
        async with run_app(**settings) as (_, client):
            assert (await client.post("/api/v1/orders", json=body, headers=headers)).status_code == 201
            server.close()  # users goes away
            for _ in range(2):
                response = await client.post("/api/v1/orders", json=body, headers=headers)
                assert response.status_code == 503
            metrics = (await client.get("/metrics")).text
            assert 'circuit_breaker_state{upstream="users"} 1.0' in metrics
            # Open: answered at once, with the time until the next trial.
            response = await client.post("/api/v1/orders", json=body, headers=headers)
            assert response.status_code == 503
            assert 25 <= int(response.headers["retry-after"]) <= 30
    assert await stored_orders(clean_db) == 1


async def test_orders_stays_ready_while_users_is_down(run_app: Any, users: Any) -> None:
    async with run_app() as (_, client):

        async def readiness() -> int:
            answer: httpx.Response = await client.get("/readyz")
            return answer.status_code

        await eventually(readiness, equals=200, message="orders never became ready")
        ready = await client.get("/readyz")
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert (await client.get("/healthz")).status_code == 200
    # Creating an order answers 503 meanwhile (test_users_gone_opens_the_breaker); the rest is served.
    async with run_app(users_url=closed_port_url()) as (_, client):

        async def readiness_without_users() -> int:
            answer: httpx.Response = await client.get("/readyz")
            return answer.status_code

        await eventually(readiness_without_users, equals=200, message="orders left the rotation")
        assert (await client.get("/healthz")).status_code == 200
