"""The realtime service application: each user's event stream over WebSocket and SSE."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.routing import WebSocketRoute

from realtime.delivery import sse
from realtime.delivery.subscriber import CLOSE_GOING_AWAY
from realtime.delivery.websocket import websocket_endpoint
from realtime.jobs import SERVICE
from realtime.resources import Metrics, open_resources
from realtime.rooms.router import router as rooms_router
from realtime.settings import Settings
from realtime.workers import declare_workers
from shared.jobs.router import jobs_router
from shared.web.app import create_base_app, serving

DESCRIPTION = (
    "Every user's events (orders, notifications), live and replayable by offset, over WebSocket "
    "(`GET /ws`) and Server-Sent Events, on any replica; chat rooms with history and presence."
)

TAGS = [
    {"name": "events", "description": "The caller's event stream"},
    {"name": "rooms", "description": "Chat rooms, their history and presence; broadcasts"},
]


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
            # uvicorn closes each WebSocket itself (1012) when it stops; an SSE response is just a
            # request that never ends, so the hub ends those streams (the browser reconnects elsewhere).
            undo = app.state.lifecycle.on_stop(
                functools.partial(
                    resources.runtime.hub.close_all, CLOSE_GOING_AWAY, "shutdown", transport="sse"
                )
            )
            try:
                yield
            finally:
                undo()

    app = create_base_app(
        title="realtime", description=DESCRIPTION, lifespan=lifespan, registry=registry, openapi_tags=TAGS
    )
    sse.use_own_drain()
    app.include_router(sse.router)
    app.include_router(jobs_router(SERVICE))
    app.include_router(rooms_router)
    # A plain Starlette route: FastAPI's dependency machinery would cost memory on every connection.
    app.router.routes.append(WebSocketRoute("/ws", websocket_endpoint, name="events_ws"))
    return app
