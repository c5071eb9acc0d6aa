"""The jobs admin API through the gateway, as an admin and as a user, on real processes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from shared.devstack import Stack
from shared.testing.waits import eventually_blocking

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.system

JOBS = "/api/v1/admin/jobs/users"


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url("gateway"), timeout=10.0)


def bearer(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin(gateway: httpx.Client) -> dict[str, str]:
    return bearer(gateway, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def user(gateway: httpx.Client) -> dict[str, str]:
    email = "jobs-user@example.com"
    registered = gateway.post(
        "/api/v1/auth/register", json={"email": email, "password": "password-123", "full_name": "Jobs User"}
    )
    assert registered.status_code == 201, registered.text
    return bearer(gateway, email, "password-123")


def finished(gateway: httpx.Client, admin: dict[str, str], job: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        runs: list[dict[str, Any]] = gateway.get(f"{JOBS}/{job}/runs", headers=admin).json()["items"]
        run = next(r for r in runs if r["id"] == run_id)
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, f"run {run_id} did not finish"
        time.sleep(0.05)


def idle(gateway: httpx.Client, admin: dict[str, str], job: str) -> None:
    """Wait out a scheduled run of ``job`` under way (users runs its schedule on the wall clock)."""

    def ended() -> bool:
        [row] = [j for j in gateway.get(JOBS, headers=admin).json()["items"] if j["name"] == job]
        return row["last_run"] is None or row["last_run"]["status"] != "running"

    eventually_blocking(ended, timeout=30, message=f"a run of {job} did not end", interval=0.05)


def test_an_admin_steers_the_jobs_through_the_gateway(gateway: httpx.Client, admin: dict[str, str]) -> None:
    listed = gateway.get(JOBS, headers=admin)
    assert listed.status_code == 200, listed.text
    names = {job["name"] for job in listed.json()["items"]}
    assert {"purge-refresh-tokens", "purge-login-failures", "purge-outbox"} <= names
    assert {job["service"] for job in listed.json()["items"]} == {"users"}

    paused = gateway.post(f"{JOBS}/purge-login-failures/pause", headers=admin)
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    idle(gateway, admin, "purge-login-failures")
    started = gateway.post(f"{JOBS}/purge-login-failures/run", headers=admin)
    assert started.status_code == 202, started.text
    run = finished(gateway, admin, "purge-login-failures", started.json()["run_id"])
    assert (run["status"], run["trigger"]) == ("succeeded", "manual")
    resumed = gateway.post(f"{JOBS}/purge-login-failures/resume", headers=admin)
    assert (resumed.status_code, resumed.json()["paused"]) == (200, False)

    bad = gateway.put(
        f"{JOBS}/purge-login-failures/schedule", json={"schedule": "every minute"}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    moved = gateway.put(
        f"{JOBS}/purge-login-failures/schedule", json={"schedule": "*/20 * * * *"}, headers=admin
    )
    assert (moved.status_code, moved.json()["schedule"]) == (200, "*/20 * * * *")
    gateway.put(f"{JOBS}/purge-login-failures/schedule", json={"schedule": "*/15 * * * *"}, headers=admin)

    document = gateway.get("/openapi.json").json()
    assert f"{JOBS}/{{name}}/run" in document["paths"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", JOBS),
        ("POST", f"{JOBS}/purge-outbox/pause"),
        ("POST", f"{JOBS}/purge-outbox/run"),
        ("PUT", f"{JOBS}/purge-outbox/schedule"),
        ("GET", f"{JOBS}/purge-outbox/runs"),
    ],
)
def test_a_user_gets_403_and_nobody_401(
    gateway: httpx.Client, user: dict[str, str], method: str, path: str
) -> None:
    body = {"schedule": "* * * * *"} if method == "PUT" else None
    assert gateway.request(method, path, headers=user, json=body).status_code == 403
    anonymous = gateway.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


def test_an_unknown_service_is_not_routed(gateway: httpx.Client, admin: dict[str, str]) -> None:
    assert gateway.get("/api/v1/admin/jobs/gateway", headers=admin).status_code == 404
    assert gateway.get("/api/v1/admin/jobs", headers=admin).status_code == 404
