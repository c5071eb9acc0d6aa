"""``create_app``: the gateway's ASGI entry point.

Routed paths go straight to a plain ASGI chain (server span, request id, error guard, body limit,
metrics, CORS, rate limit, proxy; ``/ws`` to the WebSocket proxy). Only the gateway's own endpoints
(/healthz, /readyz, /metrics, /openapi.json, /docs, /console) and unknown paths reach FastAPI, whose
per-request work (telemetry check, exception middleware, router, dependencies) costs more than the
proxying itself (README).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.compression import compressed
from gateway.console import console_router
from gateway.cors import GatewayCORSMiddleware
from gateway.docs import docs_router
from gateway.proxy import ProxyApp
from gateway.ratelimit import rate_limited_counter, rate_limiter
from gateway.routing import RoutingTable
from gateway.runtime import GatewayRuntime
from gateway.settings import GatewaySettings
from gateway.websocket import WebSocketProxy
from shared.observability.tracing import ServerSpanMiddleware
from shared.web.app import create_base_app, serving
from shared.web.metrics import HttpMetrics, RequestMetricsMiddleware
from shared.web.middleware import BodySizeLimitMiddleware, RequestIdMiddleware, UnhandledErrorMiddleware
from shared.web.server import lifecycle_of


class GatewayApp:
    """Dispatches by the routing table: a match goes to the proxy chain, the rest to ``api``."""

    def __init__(
        self, api: FastAPI, runtime: GatewayRuntime, proxy_chain: ASGIApp, ws_chain: ASGIApp
    ) -> None:
        self.api = api
        self.runtime = runtime
        self.table: RoutingTable = runtime.table
        self.proxy_chain = proxy_chain
        self.ws_chain = ws_chain
        # What shared.web.server reads (the lifecycle: /readyz turns 503 on SIGTERM) is the API's state.
        self.state = api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.table.match(scope["path"])
            if route is not None:
                # The metrics middleware labels by this template, never by the raw path.
                scope["route_template"] = route.template
                await self.proxy_chain(scope, receive, send)
                return
        elif scope["type"] == "websocket":
            route = self.table.match(scope["path"])
            if route is not None and route.websocket:
                scope["route_template"] = route.template
                await self.ws_chain(scope, receive, send)
                return
        # Lifespan, the gateway's own endpoints, and every path the table does not route (404).
        await self.api(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
    settings = settings or GatewaySettings()
    registry = CollectorRegistry()
    runtime = GatewayRuntime(settings, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No background workers: the same lifespan as the services' otherwise.
        async with runtime.open(), serving(app, runtime, []):
            yield

    api = create_base_app(
        title="API gateway",
        description="The only public entry: JWT check, routing, proxying, aggregated API docs.",
        lifespan=lifespan,
        registry=registry,
        # The aggregated document replaces FastAPI's own (gateway.docs).
        openapi_url=None,
        docs_url=None,
        max_body_bytes=settings.max_body_bytes,
    )
    api.state.runtime = runtime
    api.include_router(docs_router(runtime))
    api.include_router(console_router())
    if settings.cors_origins:
        # Innermost of FastAPI's middleware, after the request id exists.
        api.user_middleware.append(Middleware(GatewayCORSMiddleware, origins=settings.cors_origins))
    # Outermost of FastAPI's middleware: /openapi.json, /docs and /console are large and compress well.
    api.user_middleware.insert(0, Middleware(compressed))

    lifecycle = lifecycle_of(api)
    chain: ASGIApp = ProxyApp(runtime, lifecycle.stopped if lifecycle is not None else None)
    refused = rate_limited_counter(registry, [route.template for route in runtime.table.routes])
    limiter = rate_limiter(settings, runtime.table, refused)
    if limiter is not None:
        # Inside CORS and metrics: a 429 carries the CORS headers a browser needs and is counted.
        chain = limiter(chain)
    if settings.cors_origins:
        # Around the proxy only, so a preflight is answered without a token.
        chain = GatewayCORSMiddleware(chain, settings.cors_origins)
    # Around every proxied answer, 429s included; the gateway's own pages (docs, console) below.
    chain = compressed(chain)
    http_metrics: HttpMetrics = api.state.http_metrics
    chain = RequestMetricsMiddleware(chain, metrics=http_metrics)
    chain = BodySizeLimitMiddleware(chain, max_bytes=settings.max_body_bytes)
    chain = UnhandledErrorMiddleware(chain)
    chain = RequestIdMiddleware(chain)
    # Outermost: the server span covers everything the gateway does with the request.
    chain = ServerSpanMiddleware(chain)
    ws_chain: ASGIApp = WebSocketProxy(runtime)
    if limiter is not None:
        ws_chain = limiter(ws_chain)
    return GatewayApp(api, runtime, chain, RequestIdMiddleware(ws_chain))
