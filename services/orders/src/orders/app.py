"""The orders service application: orders, their state machine, idempotent creation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from orders.jobs import SERVICE
from orders.order.router import router as orders_router
from orders.resources import Metrics, open_resources
from orders.settings import Settings
from orders.workers import declare_workers
from shared.jobs.router import jobs_router
from shared.web.app import create_base_app, serving

DESCRIPTION = (
    "Orders and their state machine (pending, paid, shipped, delivered; cancelled), idempotent "
    "creation, and an account check against the users service before anything is stored."
)

TAGS = [{"name": "orders", "description": "Orders of the caller; admins see and move everyone's"}]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_resources(settings, metrics) as resources,
            serving(app, resources, declare_workers(resources, metrics)),
        ):
            yield

    app = create_base_app(
        title="orders",
        description=DESCRIPTION,
        lifespan=lifespan,
        registry=registry,
        openapi_tags=TAGS,
    )
    app.include_router(orders_router)
    app.include_router(jobs_router(SERVICE))
    return app
