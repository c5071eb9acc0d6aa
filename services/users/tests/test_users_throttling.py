"""Login throttling: per account and per client IP, in Postgres, answered with 429 and Retry-After."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_account_is_locked_after_five_failures(client: Any, api: Any) -> None:
    await api.register("victim@example.com")
    for _ in range(5):
        assert (await api.login("victim@example.com", "wrong guess")).json()["error"] == "invalid_grant"
    locked = await api.login("victim@example.com")  # even the right password waits now
    assert locked.status_code == 429
    assert locked.json()["error"] == "invalid_request"
    assert "try again" in locked.json()["error_description"]
    retry_after = int(locked.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    assert locked.headers["cache-control"] == "no-store"


async def test_the_lock_holds_across_replicas(run_app: Any) -> None:
    async with run_app() as (_, first), run_app() as (_, second):
        await first.post(
            "/api/v1/auth/register",
            json={"email": "shared@example.com", "password": "right password", "full_name": "S"},
        )
        form = {"grant_type": "password", "username": "shared@example.com", "password": "nope nope"}
        for replica in (first, second, first, second, first):
            assert (await replica.post("/api/v1/auth/token", data=form)).status_code == 400
        assert (await second.post("/api/v1/auth/token", data=form)).status_code == 429


async def test_concurrent_guesses_cannot_exceed_the_limit(api: Any) -> None:
    await api.register("burst@example.com")
    responses = await asyncio.gather(*(api.login("burst@example.com", f"guess {i}") for i in range(20)))
    checked = [r for r in responses if r.status_code == 400]
    assert len(checked) <= 5
    assert all(r.status_code in (400, 429) for r in responses)


async def test_success_resets_the_account_count(api: Any) -> None:
    await api.register("forgetful@example.com")
    for _ in range(4):
        await api.login("forgetful@example.com", "wrong guess")
    assert (await api.login("forgetful@example.com")).status_code == 200
    for _ in range(4):
        await api.login("forgetful@example.com", "wrong guess")
    assert (await api.login("forgetful@example.com")).status_code == 200


async def test_unknown_accounts_are_throttled_too(api: Any) -> None:
    for _ in range(5):
        await api.login("ghost@example.com", "wrong guess")
    assert (await api.login("GHOST@example.com", "wrong guess")).status_code == 429


async def test_ip_limit_spans_accounts(run_app: Any) -> None:
    async with run_app(login_max_failures_per_ip=3) as (_, client):

        def attempt(user: str, ip: str) -> Any:
            form = {"grant_type": "password", "username": user, "password": "wrong guess"}
            return client.post("/api/v1/auth/token", data=form, headers={"X-Forwarded-For": ip})

        for i in range(3):
            assert (await attempt(f"a{i}@example.com", "203.0.113.9")).status_code == 400
        blocked = await attempt("a9@example.com", "203.0.113.9")
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        # Another client address is unaffected.
        assert (await attempt("a9@example.com", "198.51.100.7")).status_code == 400


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(run_app: Any) -> None:
    async with run_app(login_max_failures_per_ip=2, trusted_proxies=["10.0.0.0/8"]) as (_, client):
        for i in range(2):
            form = {"grant_type": "password", "username": f"b{i}@example.com", "password": "wrong guess"}
            headers = {"X-Forwarded-For": f"192.0.2.{i}"}  # spoofed: the peer is 127.0.0.1
            assert (await client.post("/api/v1/auth/token", data=form, headers=headers)).status_code == 400
        form = {"grant_type": "password", "username": "b9@example.com", "password": "wrong guess"}
        blocked = await client.post(
            "/api/v1/auth/token", data=form, headers={"X-Forwarded-For": "192.0.2.99"}
        )
        assert blocked.status_code == 429


class MovableClock:
    """The throttle's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_failures_expire_after_the_window(run_app: Any) -> None:
    window = timedelta(minutes=15)
    async with run_app(login_max_failures_per_account=1, login_account_window=window) as (app, client):
        clock = MovableClock()
        app.state.resources.throttle.clock = clock
        form = {"grant_type": "password", "username": "brief@example.com", "password": "wrong guess"}
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 400
        clock.now += timedelta(minutes=14)
        locked = await client.post("/api/v1/auth/token", data=form)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) == 60  # the failure leaves the window in a minute
        clock.now += timedelta(minutes=1, seconds=1)
        assert (await client.post("/api/v1/auth/token", data=form)).status_code == 400


async def test_password_change_is_throttled_like_a_login(api: Any) -> None:
    await api.register("oracle@example.com")
    headers = await api.bearer("oracle@example.com")
    body = {"current_password": "a wrong guess", "new_password": "new password 9"}
    for _ in range(5):
        response = await api.client.post("/api/v1/users/me/password", json=body, headers=headers)
        assert response.status_code == 422
    locked = await api.client.post("/api/v1/users/me/password", json=body, headers=headers)
    assert locked.status_code == 429
    assert locked.headers["content-type"] == "application/problem+json"
    assert int(locked.headers["retry-after"]) > 0


async def test_guesses_at_made_up_accounts_do_not_lock_out_a_correct_password(api: Any) -> None:
    """Behind an ingress every client shares one address: its failures must not lock anyone out."""
    await api.register("innocent@example.com")
    await api.register("careless@example.com")
    await api.login("careless@example.com", "a typo")  # this account has failed itself
    shared = {"X-Forwarded-For": "203.0.113.50"}
    for i in range(50):
        response = await api.login(f"made-up-{i}@example.com", "wrong guess", **shared)
        assert response.status_code in (400, 429)
    assert (await api.login("innocent@example.com", **shared)).status_code == 200
    # The address is over its limit: wrong passwords are slowed down, for every account.
    wrong = await api.login("innocent@example.com", "wrong guess", **shared)
    assert wrong.status_code == 429
    assert int(wrong.headers["retry-after"]) > 0
    assert (await api.login("careless@example.com", **shared)).status_code == 429
    # Another address is not affected at all.
    assert (await api.login("careless@example.com", **{"X-Forwarded-For": "198.51.100.3"})).status_code == 200


async def test_the_client_cannot_choose_its_address(run_app: Any) -> None:
    """The left-most X-Forwarded-For entry is the client's own writing; the proxy's entry counts."""
    async with run_app(login_max_failures_per_ip=2) as (_, client):

        def attempt(user: str, forwarded: str) -> Any:
            form = {"grant_type": "password", "username": user, "password": "wrong guess"}
            return client.post("/api/v1/auth/token", data=form, headers={"X-Forwarded-For": forwarded})

        for i in range(2):
            assert (await attempt(f"c{i}@example.com", f"192.0.2.{i}, 203.0.113.9")).status_code == 400
        assert (await attempt("c9@example.com", "192.0.2.99, 203.0.113.9")).status_code == 429
