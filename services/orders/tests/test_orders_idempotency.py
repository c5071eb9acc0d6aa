"""Idempotency-Key: a retry gets the first answer, a reused key with another body is refused,
and concurrent retries make exactly one order."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from shared.testing.jobs import AdminJobs

pytestmark = pytest.mark.integration


async def count_orders(api: Any, headers: dict[str, str]) -> int:
    return len(
        (await api.client.get("/api/v1/orders", params={"limit": 100}, headers=headers)).json()["items"]
    )


async def test_a_retry_gets_the_same_status_and_body_marked_replayed(api: Any) -> None:
    _, alice = api.customer()
    first = await api.create(alice, None, **{"Idempotency-Key": "order-1"})
    again = await api.create(alice, None, **{"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count_orders(api, alice) == 1


async def test_the_replay_is_the_first_answer_even_after_the_order_moved_on(api: Any) -> None:
    _, alice = api.customer()
    first = await api.create(alice, None, **{"Idempotency-Key": "k"})
    assert (await api.act(first.json()["id"], "pay", alice)).status_code == 200
    again = await api.create(alice, None, **{"Idempotency-Key": "k"})
    assert again.json() == first.json()
    assert again.json()["status"] == "pending"


async def test_key_order_and_spacing_of_the_body_do_not_make_it_another_body(api: Any) -> None:
    _, alice = api.customer()
    compact = b'{"currency":"USD","items":[{"sku":"A","name":"a","quantity":1,"unit_price_cents":5}]}'
    spaced = (
        b'{ "items": [ {"unit_price_cents": 5, "quantity": 1, "name": "a", "sku": "A"} ], "currency": "USD" }'
    )
    responses = [
        await api.client.post(
            "/api/v1/orders",
            content=raw,
            headers={**alice, "Content-Type": "application/json", "Idempotency-Key": "same"},
        )
        for raw in (compact, spaced)
    ]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[1].headers["idempotent-replayed"] == "true"


async def test_the_same_key_with_another_body_is_422(api: Any, body: Callable[..., dict[str, Any]]) -> None:
    _, alice = api.customer()
    assert (await api.create(alice, body(("A", 1, 100)), **{"Idempotency-Key": "k2"})).status_code == 201
    response = await api.create(alice, body(("A", 2, 100)), **{"Idempotency-Key": "k2"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["header", "idempotency-key"]
    assert await count_orders(api, alice) == 1


async def test_keys_belong_to_their_user(api: Any) -> None:
    _, alice = api.customer()
    _, bob = api.customer()
    a = await api.create(alice, None, **{"Idempotency-Key": "shared-name"})
    b = await api.create(bob, None, **{"Idempotency-Key": "shared-name"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_key_outside_1_to_255_characters_is_422(api: Any, key: str) -> None:
    _, alice = api.customer()
    response = await api.create(alice, None, **{"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert await count_orders(api, alice) == 0


async def test_a_255_character_key_works(api: Any) -> None:
    _, alice = api.customer()
    assert (await api.create(alice, None, **{"Idempotency-Key": "k" * 255})).status_code == 201


async def test_ten_concurrent_retries_make_one_order_and_ten_identical_answers(api: Any) -> None:
    _, alice = api.customer()
    responses = await asyncio.gather(
        *(api.create(alice, None, **{"Idempotency-Key": "burst"}) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert await count_orders(api, alice) == 1


async def test_a_failed_create_does_not_burn_the_key(api: Any) -> None:
    _, alice = api.customer()
    api.users.failing_with = 503
    failed = await api.create(alice, None, **{"Idempotency-Key": "retry-me"})
    assert failed.status_code == 503
    api.users.failing_with = None
    ok = await api.create(alice, None, **{"Idempotency-Key": "retry-me"})
    assert ok.status_code == 201
    assert "idempotent-replayed" not in ok.headers


async def test_a_replay_needs_no_users_service(api: Any) -> None:
    _, alice = api.customer()
    first = await api.create(alice, None, **{"Idempotency-Key": "offline"})
    api.users.failing_with = 503
    again = await api.create(alice, None, **{"Idempotency-Key": "offline"})
    assert again.status_code == 201
    assert again.content == first.content


async def run_cli(*args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orders",
        *args,
        env={**os.environ, "LOG_FORMAT": "console", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_keys_older_than_the_retention_are_purged(api: Any, clean_db: Any) -> None:
    # The app's own scheduler would purge the backdated key at minute 7 of the hour: held, only the
    # CLI's run below touches it.
    _, admin = api.admin()
    await AdminJobs(api.client, admin, "orders").hold("purge-idempotency-keys")
    _, alice = api.customer()
    await api.create(alice, None, **{"Idempotency-Key": "old"})
    await api.create(alice, None, **{"Idempotency-Key": "fresh"})
    conn = await asyncpg.connect(clean_db.admin_url)
    try:
        await conn.execute(
            "UPDATE orders.idempotency_keys SET created_at = now() - interval '49 hours' WHERE key = 'old'"
        )
        code, output = await run_cli(
            "jobs",
            "run",
            "purge-idempotency-keys",
            DATABASE_URL=clean_db.admin_url,
            ORDERS_DATABASE_URL=clean_db.service_url,
            ORDERS_IDEMPOTENCY_RETENTION=str(48 * 3600),
        )
        assert code == 0, output
        assert "purge-idempotency-keys succeeded: deleted 1 rows of idempotency_keys" in output
        keys = [row["key"] for row in await conn.fetch("SELECT key FROM orders.idempotency_keys")]
    finally:
        await conn.close()
    assert keys == ["fresh"]
    # The purged key is free again: the same request is a new order.
    again = await api.create(alice, None, **{"Idempotency-Key": "old"})
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
