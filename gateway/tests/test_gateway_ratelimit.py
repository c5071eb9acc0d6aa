"""Per-client rate limit: a token bucket per address, 429 problem with Retry-After, counted per route."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from gateway.headers import TrustedProxies
from gateway.ratelimit import TokenBuckets, client_address
from gateway.settings import GatewaySettings
from shared.testing.servers import Running


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


def test_behind_a_trusted_proxy_the_client_is_the_nearest_untrusted_hop() -> None:
    trusted = TrustedProxies(["10.0.0.0/8"])

    def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 5000), "headers": headers}

    assert client_address(scope("203.0.113.9"), trusted) == "203.0.113.9"
    # An untrusted peer's X-Forwarded-For is not believed: it could name anyone.
    assert client_address(scope("203.0.113.9", "198.51.100.1"), trusted) == "203.0.113.9"
    assert client_address(scope("10.1.2.3", "198.51.100.1, 203.0.113.7, 10.9.9.9"), trusted) == "203.0.113.7"
    assert client_address(scope("10.1.2.3"), trusted) == "10.1.2.3"


def test_the_limit_is_off_by_default() -> None:
    assert GatewaySettings(environment="test").rate_limit_per_minute == 0
    assert GatewaySettings(environment="test", rate_limit_per_minute=600).rate_limit_capacity == 100


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
