"""The skeleton every FastAPI component shares: middleware, error handler, health and metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry

from shared.web.health import Lifecycle, ReadinessCheck, health_router
from shared.web.metrics import QUIET_ROUTES, HttpMetrics, RequestMetricsMiddleware
from shared.web.middleware import (
    MAX_BODY_BYTES,
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
)
from shared.web.problems import install_error_handlers

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def untraced(scope: MutableMapping[str, Any]) -> bool:
    """Probes and scrapes make no spans: they are not what users do, and they come every few seconds."""
    return scope.get("path") in QUIET_ROUTES


# FastAPI's native OpenTelemetry support: a server span per request from the global tracer provider,
# which shared.observability.tracing installs only when an OTLP endpoint is configured (otherwise this is a
# no-op).
# Prometheus stays the metrics path and the JSON logs the log path, so only tracing is switched on;
# one span per request, without the per-dependency and serialization spans FastAPI could add.
TELEMETRY: TelemetryConfig = {
    "tracing": True,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
    "exclude": untraced,
}


def create_base_app(
    *,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    lifespan: Lifespan | None = None,
    registry: CollectorRegistry | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    openapi_url: str | None = "/openapi.json",
    docs_url: str | None = "/docs",
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with the project's conventions; the service adds its routers and checks.

    Readiness checks live in ``app.state.readiness`` (name -> async callable) so the lifespan can
    register the resources it builds; ``app.state.lifecycle`` tells /readyz when the server is draining.
    """
    registry = registry or CollectorRegistry()
    lifecycle = Lifecycle()
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        openapi_url=openapi_url,
        docs_url=docs_url,
        redoc_url=None if openapi_url is None else "/redoc",
        telemetry=TELEMETRY,
    )
    app.state.registry = registry
    app.state.lifecycle = lifecycle
    app.state.readiness = {}
    http_metrics = HttpMetrics.create(registry)
    # Chains that run outside FastAPI (the gateway's proxy) count into the same series.
    app.state.http_metrics = http_metrics

    def checks() -> Mapping[str, ReadinessCheck]:
        readiness: Mapping[str, ReadinessCheck] = app.state.readiness
        return readiness

    install_error_handlers(app)
    app.include_router(health_router(registry, checks, lifecycle=lifecycle))
    # Added last = outermost: the request id exists before anything logs or fails.
    app.add_middleware(RequestMetricsMiddleware, metrics=http_metrics)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
