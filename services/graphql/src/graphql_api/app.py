"""The graphql component: one GraphQL API over the services (contract section 7), no database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from cross_web import HTTPException
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET

from graphql_api.context import Context, get_context
from graphql_api.errors import BAD_USER_INPUT
from graphql_api.resources import open_resources
from graphql_api.schema import build_schema
from graphql_api.settings import Settings
from shared.web.app import create_base_app, serving

DESCRIPTION = "One GraphQL API over the services: POST /graphql, subscriptions over graphql-transport-ws."
PATH = "/graphql"


def _closed(ws: WebSocket) -> bool:
    # A function, not an inline check: mypy narrows the state after the first test and calls the
    # second unreachable, while the close happens in another task in between.
    return ws.application_state is WebSocketState.DISCONNECTED


class ClosableWebSocketAdapter(ASGIWebSocketAdapter):
    """A subscription may close its client's connection itself (``stream``: a subscriber too slow, an
    expired token) while Strawberry still has a message on its way, waiting for the socket to drain;
    that message is dropped instead of failing (and being logged) as a send after the close."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        if _closed(self.ws):
            return
        try:
            await super().send_json(message)
        except RuntimeError:
            if not _closed(self.ws):
                raise


class GraphQLEndpoint(GraphQLRouter[Context, None]):
    """Strawberry's router, with its plain-text refusals (a batch, a body that is not JSON, ...) answered
    as GraphQL errors, so a client reads every refusal the same way."""

    websocket_adapter_class = ClosableWebSocketAdapter

    async def run(  # type: ignore[override]
        self, request: Request | WebSocket, context: Any = UNSET, root_value: Any = UNSET
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            if isinstance(request, WebSocket):
                raise
            body = {"errors": [{"message": exc.reason, "extensions": {"code": BAD_USER_INPUT}}]}
            return JSONResponse(body, status_code=exc.status_code)


def create_app(
    settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """``transport`` replaces the network to the services (tests)."""
    settings = settings or Settings()
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No background workers: the same lifespan as the services' otherwise.
        async with open_resources(settings, transport) as resources, serving(app, resources, []):
            yield

    app = create_base_app(
        title="graphql",
        description=DESCRIPTION,
        lifespan=lifespan,
        registry=registry,
        # The aggregated /openapi.json is the REST API's; this component publishes docs/schema.graphql.
        openapi_url=None,
        docs_url=None,
    )
    endpoint = GraphQLEndpoint(
        build_schema(introspection=settings.introspection),
        path=PATH,
        context_getter=get_context,
        # GraphiQL in development; queries only by POST (a GET cannot be a CSRF'd read of private data).
        graphql_ide="graphiql" if settings.introspection else None,
        allow_queries_via_get=False,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
    )
    app.include_router(endpoint)
    return app
