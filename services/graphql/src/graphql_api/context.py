"""What every resolver gets: the caller, the service clients and this request's DataLoaders."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from graphql_api.loaders import users_loader
from graphql_api.services import Caller, Services
from graphql_api.settings import Settings
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


async def get_context(connection: HTTPConnection) -> Context:
    """FastAPI dependency behind Strawberry's ``context_getter`` (HTTP requests and WebSockets alike)."""
    services: Services = connection.app.state.services
    request_id = current_request_id()
    headers = {name: connection.headers[name] for name in connection.headers}
    if "authorization" not in headers and connection.scope["type"] == "websocket":
        # Browsers cannot set headers on a WebSocket: the token may come in ?token= (contract section 7).
        token = connection.query_params.get("token")
        if token:
            headers["authorization"] = f"Bearer {token}"
    return Context(services, Caller.from_headers(headers, request_id), request_id)
