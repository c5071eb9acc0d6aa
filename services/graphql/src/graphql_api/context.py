"""What every resolver gets: the caller, the service clients and this request's DataLoaders."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from graphql_api.loaders import users_loader
from graphql_api.resources import Resources
from graphql_api.services import Caller, Services
from graphql_api.settings import Settings
from shared.auth.verifier import bearer_token
from shared.errors import Unauthorized
from shared.observability.request_id import current_request_id


class Context(BaseContext):
    def __init__(self, services: Services, caller: Caller, request_id: str | None) -> None:
        super().__init__()
        self.services = services
        self.settings: Settings = services.settings
        self.caller = caller
        self.request_id = request_id
        # Per request (never shared): a loader caches what it loaded, and users see different things.
        self.users: DataLoader[uuid.UUID, dict[str, Any]] = users_loader(services, request_id)


async def _verify(resources: Resources, token: str | None) -> None:
    if token is None:
        raise Unauthorized("An access token is required.", error=None)
    await resources.verifier.verify(token)


async def get_context(connection: HTTPConnection) -> Context:
    """FastAPI dependency behind Strawberry's ``context_getter`` (HTTP requests and WebSockets alike).

    The token is verified first, as every service verifies it: without a valid one, a request gets the
    401 problem every service gives, and a WebSocket is refused at the handshake.
    """
    resources: Resources = connection.app.state.resources
    request_id = current_request_id()
    headers = {name: connection.headers[name] for name in connection.headers}
    websocket = connection.scope["type"] == "websocket"
    token = bearer_token(headers.get("authorization"))
    if token is None and websocket:
        # Browsers cannot set headers on a WebSocket: the token may come in ?token= (contract section 7).
        token = connection.query_params.get("token") or None
        if token:
            headers["authorization"] = f"Bearer {token}"
    try:
        await _verify(resources, token)
    except Unauthorized as error:
        if websocket:
            # Before the handshake is accepted: the client is refused (403), nothing is subscribed.
            raise WebSocketException(code=4401, reason=error.detail) from error
        raise
    return Context(resources.services, Caller.from_headers(headers, request_id), request_id)
