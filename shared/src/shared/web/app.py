"""The skeleton every FastAPI component shares: middleware, error handler, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry

from shared.auth.verifier import TokenVerifier
from shared.service.supervisor import Supervisor, Worker, WorkerMetrics
from shared.web.health import Lifecycle, ReadinessCheck, health_router
from shared.web.metrics import QUIET_ROUTES, HttpMetrics, RequestMetricsMiddleware
from shared.web.middleware import (
    MAX_BODY_BYTES,
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
)
from shared.web.problems import install_error_handlers, install_problem_docs

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def quiet_route(scope: MutableMapping[str, Any]) -> bool:
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
    "exclude": quiet_route,
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
    register the resources it builds; ``app.state.lifecycle`` tells /readyz when the server is draining;
    ``app.state.supervisor`` runs the background workers (``serving``), their metrics made once here.
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
    supervisor = Supervisor(WorkerMetrics.create(registry))
    app.state.supervisor = supervisor
    http_metrics = HttpMetrics.create(registry)
    # Chains that run outside FastAPI (the gateway's proxy) count into the same series.
    app.state.http_metrics = http_metrics

    def checks() -> Mapping[str, ReadinessCheck]:
        readiness: Mapping[str, ReadinessCheck] = app.state.readiness
        return {**readiness, **supervisor.readiness()}

    install_error_handlers(app)
    install_problem_docs(app)
    app.include_router(health_router(registry, checks, lifecycle=lifecycle, workers=supervisor.states))
    # Added last = outermost: the request id exists before anything logs or fails.
    app.add_middleware(RequestMetricsMiddleware, metrics=http_metrics)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


class ServiceResources(Protocol):
    """What a service's ``resources.py`` builds, as the lifespan sees it."""

    @property
    def verifier(self) -> TokenVerifier: ...

    def readiness(self) -> Mapping[str, ReadinessCheck]: ...


@asynccontextmanager
async def serving(
    app: FastAPI, resources: ServiceResources, workers: Sequence[Worker]
) -> AsyncIterator[None]:
    """The middle of every service's lifespan: publish what it built, run its workers, undo both."""
    app.state.resources = resources
    app.state.token_verifier = resources.verifier
    checks = resources.readiness()
    app.state.readiness.update(checks)
    supervisor: Supervisor = app.state.supervisor
    try:
        async with supervisor.running(workers):
            yield
    finally:
        for name in checks:
            app.state.readiness.pop(name, None)
