"""The notification service application: in-app notifications and e-mail, fed by events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from notification.notifications import router as notifications
from notification.resources import Metrics, open_resources
from notification.settings import SERVICE, Settings
from notification.workers import declare_workers
from shared.jobs.router import jobs_router
from shared.web.app import create_base_app, serving

DESCRIPTION = "A user's in-app notifications, and the e-mails that go with them; both are fed by events."

TAGS = [{"name": "notifications", "description": "The caller's own notifications"}]


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
        title="notification", description=DESCRIPTION, lifespan=lifespan, registry=registry, openapi_tags=TAGS
    )
    app.include_router(notifications.router)
    app.include_router(jobs_router(SERVICE))
    return app
