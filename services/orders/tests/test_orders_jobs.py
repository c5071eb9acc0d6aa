"""The orders jobs and the admin API that steers them, on the real Postgres and RabbitMQ."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from shared.jobs.scheduler import Scheduler
from shared.testing.jobs import AdminJobs

pytestmark = pytest.mark.integration

JOBS = "/api/v1/admin/jobs/orders"


async def test_expire_unpaid_orders_cancels_only_what_is_due_and_tells_the_bus(
    run_app: Any, api_factory: Any, probe: Any, clean_db: Any
) -> None:
    async with run_app(unpaid_ttl=24 * 3600) as (_, client):
        api = api_factory(client)
        _, alice = api.customer()
        _, admin = api.admin()
        jobs = AdminJobs(client, admin, "orders")
        await jobs.hold("expire-unpaid-orders")
        old = await api.place(alice)
        fresh = await api.place(alice)
        old_paid = await api.place(alice)
        assert (await api.act(old_paid["id"], "pay", alice)).status_code == 200
        await probe.take(4)
        conn = await asyncpg.connect(clean_db.admin_url)
        try:
            await conn.execute(
                "UPDATE orders.orders SET created_at = now() - interval '25 hours' "
                "WHERE id = ANY($1::uuid[])",
                [uuid.UUID(old["id"]), uuid.UUID(old_paid["id"])],
            )
        finally:
            await conn.close()

        run = await jobs.run("expire-unpaid-orders")
        assert (run["status"], run["trigger"], run["detail"]) == (
            "succeeded",
            "manual",
            "cancelled 1 unpaid orders",
        )

        statuses = {
            o["id"]: o["status"] for o in (await client.get("/api/v1/orders", headers=alice)).json()["items"]
        }
        assert statuses == {old["id"]: "cancelled", fresh["id"]: "pending", old_paid["id"]: "paid"}
        [message] = await probe.take(1)
        assert message.routing_key == "order.status_changed"
        data = orjson.loads(message.body)["data"]
        assert (data["order_id"], data["from_status"], data["to_status"], data["reason"]) == (
            old["id"],
            "pending",
            "cancelled",
            "expired",
        )
        assert await probe.take(1, timeout=0.5) == []


async def test_admin_api_lists_pauses_resumes_and_reschedules(client: httpx.AsyncClient, api: Any) -> None:
    _, admin = api.admin()
    listed = await client.get(JOBS, headers=admin)
    assert listed.status_code == 200
    jobs = {job["name"]: job for job in listed.json()["items"]}
    assert set(jobs) == {"expire-unpaid-orders", "purge-idempotency-keys", "purge-outbox"}
    assert jobs["expire-unpaid-orders"]["schedule"] == "*/5 * * * *"
    assert jobs["purge-outbox"] == {
        "name": "purge-outbox",
        "service": "orders",
        "schedule": "*/10 * * * *",
        "paused": False,
        "next_run_at": jobs["purge-outbox"]["next_run_at"],
        "last_run": None,
    }
    assert jobs["purge-outbox"]["next_run_at"].endswith("Z")

    paused = await client.post(f"{JOBS}/purge-outbox/pause", headers=admin)
    assert paused.status_code == 200
    assert (paused.json()["paused"], paused.json()["next_run_at"]) == (True, None)
    resumed = await client.post(f"{JOBS}/purge-outbox/resume", headers=admin)
    assert (resumed.json()["paused"], resumed.json()["next_run_at"] is not None) == (False, True)

    moved = await client.put(f"{JOBS}/purge-outbox/schedule", json={"schedule": "0  3 * * 1"}, headers=admin)
    assert moved.status_code == 200
    assert moved.json()["schedule"] == "0 3 * * 1"
    assert (await client.get(JOBS, headers=admin)).json()["items"][2]["schedule"] == "0 3 * * 1"


@pytest.mark.parametrize(
    "body",
    [
        {"schedule": "* * * * * *"},
        {"schedule": "61 * * * *"},
        {"schedule": "@hourly"},
        {"schedule": "*/5 * * * *\u0000"},
        {"schedule": 5},
        {"schedule": "x" * 5000},
        {},
        [],
    ],
)
async def test_a_bad_schedule_is_422_and_changes_nothing(
    client: httpx.AsyncClient, api: Any, body: Any
) -> None:
    _, admin = api.admin()
    response = await client.put(f"{JOBS}/purge-outbox/schedule", json=body, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]
    listed = {job["name"]: job for job in (await client.get(JOBS, headers=admin)).json()["items"]}
    assert listed["purge-outbox"]["schedule"] == "*/10 * * * *"


async def test_run_now_is_409_while_a_run_is_under_way_and_runs_paused_jobs(
    run_app: Any, api_factory: Any
) -> None:
    async with run_app() as (app, client):
        api = api_factory(client)
        _, admin = api.admin()
        scheduler: Scheduler = app.state.resources.scheduler
        jobs = AdminJobs(client, admin, "orders")
        await jobs.hold("purge-outbox")
        # Another replica holds a run of it.
        await scheduler.sync()
        claim = await scheduler.store.claim_manual("purge-outbox", "other-replica", scheduler.clock.now(), 60)
        assert claim is not None
        refused = await client.post(f"{JOBS}/purge-outbox/run", headers=admin)
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        await scheduler.store.finish(claim, scheduler.clock.now(), "succeeded", "elsewhere")

        run = await jobs.run("purge-outbox")
        assert run["status"] == "succeeded"
        listed = {job["name"]: job for job in (await client.get(JOBS, headers=admin)).json()["items"]}
        assert listed["purge-outbox"]["paused"] is True
        assert listed["purge-outbox"]["last_run"]["id"] == run["id"]


async def test_runs_are_paginated_newest_first(client: httpx.AsyncClient, api: Any) -> None:
    _, admin = api.admin()
    jobs = AdminJobs(client, admin, "orders")
    await jobs.hold("purge-idempotency-keys")
    ids = [(await jobs.run("purge-idempotency-keys"))["id"] for _ in range(3)]
    first = (await client.get(f"{JOBS}/purge-idempotency-keys/runs?limit=2", headers=admin)).json()
    assert [r["id"] for r in first["items"]] == ids[:0:-1]
    second = await client.get(
        f"{JOBS}/purge-idempotency-keys/runs",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=admin,
    )
    assert [r["id"] for r in second.json()["items"]] == ids[:1]
    assert second.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", JOBS),
        ("POST", f"{JOBS}/purge-outbox/pause"),
        ("POST", f"{JOBS}/purge-outbox/resume"),
        ("POST", f"{JOBS}/purge-outbox/run"),
        ("PUT", f"{JOBS}/purge-outbox/schedule"),
        ("GET", f"{JOBS}/purge-outbox/runs"),
    ],
)
async def test_only_admins_reach_the_jobs(
    client: httpx.AsyncClient, api: Any, method: str, path: str
) -> None:
    _, alice = api.customer()
    body = {"schedule": "* * * * *"} if method == "PUT" else None
    forbidden = await client.request(method, path, headers=alice, json=body)
    assert forbidden.status_code == 403
    anonymous = await client.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", f"{JOBS}/no-such-job/run", 404),
        ("POST", f"{JOBS}/..%2F..%2Fadmin/pause", 404),
        ("GET", f"{JOBS}/{'x' * 300}/runs", 422),
        ("GET", f"{JOBS}/purge-outbox/runs?cursor=not-a-cursor", 422),
        ("GET", f"{JOBS}/purge-outbox/runs?limit=0", 422),
        ("GET", f"{JOBS}/purge-outbox/runs?limit=101", 422),
        ("GET", f"{JOBS}/purge-outbox/runs?limit=1e3", 422),
    ],
)
async def test_hostile_paths_are_4xx(
    client: httpx.AsyncClient, api: Any, method: str, path: str, status: int
) -> None:
    _, admin = api.admin()
    response = await client.request(method, path, headers=admin)
    assert response.status_code == status, response.text
