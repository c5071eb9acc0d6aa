"""A token bucket per client address on the proxied routes: 429 with ``Retry-After`` once it is empty.

``GATEWAY_RATE_LIMIT_PER_MINUTE`` tokens a minute refill each client's bucket, which holds at most
``GATEWAY_RATE_LIMIT_BURST`` (default: ten seconds' worth). 0 switches the limit off, the default: the
address a client is known by is only meaningful once ``GATEWAY_TRUSTED_PROXIES`` names the load
balancer in front (otherwise every client would share the balancer's bucket). Each replica counts on
its own, so a client gets up to N times the rate from N replicas; it is a guard against one client
flooding the system, not a quota.

Written here rather than taken from a library (slowapi, limits): those hook into routes and responses
the gateway's proxy chain does not have, and a bucket is a dozen lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.headers import TrustedProxies
from shared.errors import TooManyRequests
from shared.web.problems import problem_response

Clock = Callable[[], float]


def rate_limited_counter(registry: CollectorRegistry, routes: Iterable[str]) -> Counter:
    counter = Counter(
        "gateway_rate_limited",
        "Requests refused with 429 because their client's token bucket was empty, by route template.",
        ["route"],
        registry=registry,
    )
    # Every series exists from the start: dashboards show 0, and rate() sees the first refusal.
    for route in routes:
        counter.labels(route)
    return counter


class TokenBuckets:
    """``rate`` tokens a second per key, at most ``burst`` saved up; idle full buckets are forgotten."""

    def __init__(
        self, rate: float, burst: int, *, clock: Clock = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._next_prune = clock() + 60.0

    def take(self, key: str) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be."""
        now = self.clock()
        if now >= self._next_prune or len(self._buckets) >= self.max_keys:
            self._prune(now)
        tokens, counted = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - counted) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket at all.
        self._buckets = {
            key: (tokens, counted)
            for key, (tokens, counted) in self._buckets.items()
            if tokens + (now - counted) * self.rate < self.burst
        }
        if len(self._buckets) >= self.max_keys:
            # Too many clients mid-burst to remember (a flood of addresses): start over rather than grow.
            self._buckets.clear()
        self._next_prune = now + 60.0

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: Scope, trusted: TrustedProxies) -> str:
    """The peer's address; behind a trusted proxy, the nearest address in X-Forwarded-For it vouches for."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    if peer not in trusted:
        return peer
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            listed: str = value.decode("latin-1")
            hops = [hop.strip() for hop in listed.split(",") if hop.strip()]
            for hop in reversed(hops):
                if hop not in trusted:
                    return hop
    return peer


class RateLimitMiddleware:
    """Refuses a request whose client has no token left; runs before the body is read or a token checked."""

    def __init__(
        self, app: ASGIApp, *, buckets: TokenBuckets, trusted: TrustedProxies, refused: Counter
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.trusted = trusted
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_address(scope, self.trusted))
        if not wait:
            await self.app(scope, receive, send)
            return
        self.refused.labels(scope.get("route_template", "")).inc()
        error = TooManyRequests("Too many requests from this client; slow down.", retry_after=int(wait) + 1)
        response = problem_response(
            error.status,
            headers=error.headers,
            title=error.title,
            detail=error.detail,
            type_slug=error.type_slug,
            instance=scope["path"],
        )
        await response(scope, receive, send)
