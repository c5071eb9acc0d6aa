"""Token buckets per client address on the proxied routes: 429 with ``Retry-After`` once one is empty.

On by default (contract section 3). Every proxied request takes a token from the client's general
bucket (``GATEWAY_RATE_LIMIT_PER_MINUTE``); the routes that cost a service the most or that an
attacker would hammer take one more from a tighter bucket of their class: sign-up, token and password
reset (``auth``: password hashing, guessing), and WebSocket/SSE handshakes (``stream``: a long-lived
connection each). ``RATE_LIMIT_SCALE`` multiplies every rate and burst (tests that send many clients
from one address raise it). The client is ``shared.web.client_address``'s: behind the ingress, set
``GATEWAY_TRUSTED_PROXIES`` to it, or every client shares the ingress's bucket. Each replica counts on
its own, so a client gets up to N times the rate from N replicas; it is a guard against one client
flooding the system, not a quota.

Written here rather than taken from a library (slowapi, limits): those hook into routes and responses
the gateway's proxy chain does not have, and a bucket is a dozen lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.handshake import deny_websocket
from gateway.routing import RoutingTable
from gateway.settings import GatewaySettings
from shared.errors import TooManyRequests
from shared.web.client_address import TrustedProxies
from shared.web.problems import problem_response
from shared.web.ratelimit import TokenBuckets


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


class RateLimitMiddleware:
    """Refuses a request (or a WebSocket handshake) whose client has no token left in a bucket it needs.

    It runs before the body is read or a token checked. ``classes`` maps a route template to the extra
    bucket its requests also take from.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        buckets: TokenBuckets,
        trusted: TrustedProxies,
        refused: Counter,
        classes: Mapping[str, TokenBuckets] | None = None,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.trusted = trusted
        self.refused = refused
        self.classes = dict(classes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = self.trusted.client_address_of(scope)
        template = scope.get("route_template", "")
        wait = self.buckets.take(client)
        extra = self.classes.get(template)
        if not wait and extra is not None:
            wait = extra.take(client)
        if not wait:
            await self.app(scope, receive, send)
            return
        self.refused.labels(template).inc()
        error = TooManyRequests("Too many requests from this client; slow down.", retry_after=int(wait) + 1)
        if scope["type"] == "websocket":
            if (await receive())["type"] == "websocket.connect":
                await deny_websocket(scope, send, error)
            return
        response = problem_response(
            error.status,
            headers=error.headers,
            title=error.title,
            detail=error.detail,
            type_slug=error.type_slug,
            instance=scope["path"],
        )
        await response(scope, receive, send)


def rate_limiter(
    settings: GatewaySettings, table: RoutingTable, refused: Counter
) -> Callable[[ASGIApp], RateLimitMiddleware] | None:
    """What wraps a chain in the configured limits (one set of buckets for HTTP and WebSocket), or None."""
    limits = settings.rate_limits()
    if "default" not in limits:
        return None
    buckets = {name: TokenBuckets(rate, burst) for name, (rate, burst) in limits.items()}
    classes = {
        route.template: buckets[route.rate_limit]
        for route in table.routes
        if route.rate_limit is not None and route.rate_limit in buckets
    }
    trusted = TrustedProxies(settings.trusted_proxies)

    def wrap(app: ASGIApp) -> RateLimitMiddleware:
        return RateLimitMiddleware(
            app, buckets=buckets["default"], trusted=trusted, refused=refused, classes=classes
        )

    return wrap
