"""Per-client rate limit: a token bucket per address, 429 problem with Retry-After, counted per route."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.settings import GatewaySettings
from shared.testing.servers import Running
from shared.web.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refuses_until_it_refills() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0, "each client has a bucket of its own"
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_full_buckets_are_forgotten() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    for client in ("a", "b", "c"):
        buckets.take(client)
    assert len(buckets) == 3
    clock.now += 120  # long enough to refill, and past the next prune
    buckets.take("d")
    assert len(buckets) == 1


def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    buckets = TokenBuckets(rate=1.0, burst=5, clock=Clock(), max_keys=100)
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
    assert len(buckets) <= 100


def test_the_limits_are_on_by_default_and_scaled_by_rate_limit_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = GatewaySettings(environment="test").rate_limits()
    assert set(limits) == {"default", "auth", "stream"}
    assert limits["auth"][0] < limits["default"][0]
    assert limits["stream"][0] < limits["default"][0]
    assert GatewaySettings(environment="test", rate_limit_per_minute=600).rate_limit_capacity == 100
    monkeypatch.setenv("RATE_LIMIT_SCALE", "10")
    scaled = GatewaySettings(environment="test").rate_limits()
    for name, (rate, burst) in limits.items():
        assert scaled[name] == pytest.approx((rate * 10, burst * 10))
    routes = {route.pattern: route.rate_limit for route in GatewaySettings(environment="test").routes}
    assert routes["/api/v1/auth/register"] == routes["/api/v1/auth/token"] == "auth"
    assert routes["/api/v1/auth/password-reset/*"] == "auth"
    assert routes["/ws"] == routes["/api/v1/events/*"] == "stream"


def limited_count(text: str, route: str) -> float:
    match = re.search(rf'^gateway_rate_limited_total{{route="{re.escape(route)}"}} (\S+)$', text, re.M)
    assert match, f"no gateway_rate_limited_total series for {route}"
    return float(match.group(1))


def test_a_client_over_its_rate_gets_429_with_retry_after(
    start_gateway: Callable[..., Running], users_upstream: Running, auth: dict[str, str]
) -> None:
    gateway = start_gateway(
        users_url=users_upstream.url,
        orders_url=users_upstream.url,
        rate_limit_per_minute=6,
        rate_limit_burst=2,
        rate_limit_scale=1,
        cors_origins=["https://app.example.com"],
    ).url
    with httpx.Client(base_url=gateway, timeout=5) as client:
        assert limited_count(client.get("/metrics").text, "/api/v1/users/*") == 0
        answers = [client.get("/api/v1/users/me", headers=auth) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        body = refused.json()
        assert body["status"] == 429
        assert body["type"].endswith("rate-limited")
        assert body["request_id"] == refused.headers["x-request-id"]
        # A browser can read the refusal.
        browser = client.get("/api/v1/users/me", headers={**auth, "Origin": "https://app.example.com"})
        assert browser.status_code == 429
        assert browser.headers["access-control-allow-origin"] == "https://app.example.com"
        # The gateway's own endpoints are not limited; the refusals are counted per route template.
        assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5
        metrics = client.get("/metrics").text
        assert limited_count(metrics, "/api/v1/users/*") == 2
        assert 'http_requests_total{method="GET",route="/api/v1/users/*",status="429"} 2.0' in metrics


def test_register_and_token_have_a_tighter_limit_of_their_own(
    start_gateway: Callable[..., Running], users_upstream: Running, auth: dict[str, str]
) -> None:
    gateway = start_gateway(
        users_url=users_upstream.url,
        auth_rate_limit_per_minute=1,
        auth_rate_limit_burst=2,
        rate_limit_scale=1,
    ).url
    with httpx.Client(base_url=gateway, timeout=5) as client:
        form = {"grant_type": "password", "username": "a@example.com", "password": "x"}
        answers = [client.post("/api/v1/auth/token", data=form).status_code for _ in range(2)]
        answers.append(client.post("/api/v1/auth/register", json={}).status_code)
        assert 429 not in answers[:2]
        assert answers[2] == 429, "register and token share the client's auth bucket"
        # The general bucket still has room: other routes answer.
        assert client.get("/api/v1/users/me", headers=auth).status_code == 200


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket_whatever_it_writes(
    start_gateway: Callable[..., Running], users_upstream: Running, auth: dict[str, str]
) -> None:
    gateway = start_gateway(
        users_url=users_upstream.url,
        rate_limit_per_minute=6,
        rate_limit_burst=1,
        rate_limit_scale=1,
        trusted_proxies=["127.0.0.1"],
    ).url
    with httpx.Client(base_url=gateway, timeout=5) as client:

        def get(forwarded: str) -> int:
            headers = {**auth, "X-Forwarded-For": forwarded}
            return client.get("/api/v1/users/me", headers=headers).status_code

        assert get("203.0.113.1") == 200
        assert get("203.0.113.2") == 200, "another client behind the same proxy"
        # A client cannot dodge its bucket by writing addresses in front of the one the proxy appended.
        assert get("198.51.100.77, 203.0.113.1") == 429


async def test_websocket_handshakes_are_rate_limited(
    start_gateway: Callable[..., Running], users_upstream: Running, auth: dict[str, str]
) -> None:
    gateway = start_gateway(
        users_url=users_upstream.url,
        realtime_url=users_upstream.url,
        stream_rate_limit_per_minute=1,
        stream_rate_limit_burst=1,
        rate_limit_scale=1,
    ).url
    url = gateway.replace("http://", "ws://", 1) + "/ws"
    async with connect(url, additional_headers=auth, open_timeout=5):
        pass
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=auth, open_timeout=5):
            pass
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["content-type"] == "application/problem+json"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    async with httpx.AsyncClient(base_url=gateway, timeout=5) as client:
        assert limited_count((await client.get("/metrics")).text, "/ws") == 1
